"""Errors of the trainer: every one is a :class:`progs_codec.ProgsError`."""

from __future__ import annotations

from progs_codec import ProgsError

__all__ = ["TrainingError", "DataError"]


class TrainingError(ProgsError):
    """Training cannot go on (bad configuration, a model that lost every anchor, ...)."""


class DataError(TrainingError, ValueError):
    """The input data is missing or malformed: the message names the file and what is wrong."""
