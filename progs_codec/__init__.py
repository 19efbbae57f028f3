"""progs_codec: a progressive codec for anchor-based 3D Gaussian Splatting (ProGS).

Decode a stream, or any prefix of it, into a :class:`ProgsModel`::

    import progs_codec
    model = progs_codec.decode("scene.progs", max_lod=3)
    model.positions()          # anchor centres of LoD 3

A trainer builds a model from its float arrays with :func:`build_model` (the trainer's door,
:mod:`progs_codec.build`) and encodes it with :func:`encode`.

The format is specified in ``spec/`` of the source distribution; ``docs/architecture.md``
maps its chapters to the packages ``format``, ``entropy``, ``render`` and ``tools``.
"""

from .build import BuildResult, LevelArrays, build_model
from .codec import Decoder, decode, encode
from .errors import (
    ChecksumError,
    FormatError,
    LimitError,
    ModelError,
    ProgsError,
    TruncatedError,
    UnsupportedError,
)
from .format.container import MAGIC, VERSION
from .model import AttributeDims, GaussianMLPs, Level, ProgsModel, Refinement, SceneFrame
from .tools.inspect import StreamInfo, inspect
from .tools.truncate import truncate
from .version import __version__


__all__ = [
    "encode",
    "decode",
    "Decoder",
    "inspect",
    "StreamInfo",
    "truncate",
    "ProgsModel",
    "Level",
    "SceneFrame",
    "AttributeDims",
    "GaussianMLPs",
    "Refinement",
    "MAGIC",
    "VERSION",
    "ProgsError",
    "FormatError",
    "ChecksumError",
    "TruncatedError",
    "UnsupportedError",
    "LimitError",
    "ModelError",
    "build_model",
    "LevelArrays",
    "BuildResult",
]
