"""The entropy model: hash grid, context MLP and base steps, and the two ``HEAD`` parts that
carry it (spec 5.4, 6.5).

One module for the model as data, so that parsing ``HEAD`` (chapter 3) needs neither the
attribute coder (chapter 7) nor the exporter (spec 6.6).

>>> from progs_codec.model import AttributeDims
>>> from progs_codec.testing import random_entropy_model
>>> model = random_entropy_model(AttributeDims(4, 2, 1), hidden=(8,))
>>> parse_entropy_model(*write_entropy_model(model), AttributeDims(4, 2, 1)) == model
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import FormatError, LimitError, ModelError
from ..model import AttributeDims
from .context_model import ContextModel, parse_context_model, write_context_model
from .hashgrid import HashGrid, parse_hash_grid, write_hash_grid

__all__ = [
    "FIXED_POINT_BITS",
    "MAX_BASE_STEP",
    "EntropyModel",
    "write_entropy_model",
    "parse_entropy_model",
]

FIXED_POINT_BITS = 16          # attribute values and base steps are in units of 2**-16 (7.1)
MAX_BASE_STEP = 1 << 20        # base steps are in 1..2**20 units (6.5)
_BASE_STEPS = struct.Struct("<3I")


@dataclass(frozen=True, eq=False)
class EntropyModel:
    """Everything that turns structure into probabilities (spec 5, 6, 7.2).

    Attributes:
        hash_grid: the binarized hash grid (spec 5).
        context_model: the integer context MLP (spec 6); its input width is twice the grid's
            feature width (own position, parent position).
        base_steps: ``(feature, scaling, offsets)`` quantization steps in units of ``2**-16``,
            each in ``1..2**20`` (spec 6.5).

    Raises:
        ModelError: the context model's input width does not match the grid, or a base step
            is out of range.
    """

    hash_grid: HashGrid
    context_model: ContextModel
    base_steps: tuple[int, int, int]

    def __post_init__(self):
        if self.context_model.input_width != 2 * self.hash_grid.config.feature_width:
            raise ModelError(f"context model takes {self.context_model.input_width} inputs, "
                             f"the grid gives 2 x {self.hash_grid.config.feature_width}")
        if len(self.base_steps) != 3 or not all(1 <= int(s) <= MAX_BASE_STEP
                                                for s in self.base_steps):
            raise ModelError(f"base_steps must be 3 integers in 1..{MAX_BASE_STEP}, "
                             f"got {self.base_steps}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntropyModel):
            return NotImplemented
        return (self.hash_grid == other.hash_grid and self.context_model == other.context_model
                and tuple(self.base_steps) == tuple(other.base_steps))


def write_entropy_model(model: EntropyModel) -> tuple[bytes, bytes]:
    """The ``hash_grid`` and ``context_mlp`` parts of ``HEAD`` (spec 5.4, 6.5)."""
    return (write_hash_grid(model.hash_grid),
            _BASE_STEPS.pack(*model.base_steps) + write_context_model(model.context_model))


def parse_entropy_model(hash_grid_part: bytes, context_part: bytes,
                        dims: AttributeDims) -> EntropyModel:
    """Parse the two parts (spec 5.4, 6.5).

    Raises:
        FormatError: (or a subclass) naming ``HEAD`` and the part.
    """
    grid = parse_hash_grid(hash_grid_part)
    context_part = bytes(context_part)
    if len(context_part) < _BASE_STEPS.size + 3:        # base steps, num_layers, input_width
        raise FormatError(f"context_mlp part of {len(context_part)} bytes is shorter than its "
                          f"{_BASE_STEPS.size + 3} bytes of fixed fields", chunk="HEAD",
                          field="context_mlp")
    steps = _BASE_STEPS.unpack_from(context_part)
    if not all(1 <= s <= MAX_BASE_STEP for s in steps):
        raise LimitError(f"base steps {steps} not in 1..{MAX_BASE_STEP}", chunk="HEAD",
                         field="context_mlp")
    context = parse_context_model(context_part[_BASE_STEPS.size:], dims.channels,
                                  input_width=2 * grid.config.feature_width)
    return EntropyModel(grid, context, steps)
