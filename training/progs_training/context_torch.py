"""The float context model and the training rate (spec 6, 7 semantics in float).

The float MLP sees what the integer one will see: the integer hash features (spec 5.3) of an
anchor and of its parent (zeros for roots), ``[N, 2W]`` values in ``[-127, 127]``. It predicts,
per attribute channel, a mean, a continuous scale index and a continuous step index, the
float twins of spec 6.4's outputs. With the spec 7.3 tables in closed form
(``sigma = 0.11 (256/0.11)**(s/63)`` steps, ``step = base * 2**((t - 16) / 8)``), the rate of a
value ``x`` is HAC's ``-log2(Phi((x - mu + q/2) / sigma) - Phi((x - mu - q/2) / sigma))``.

In the last phase of training (``quantize=True``) the model runs as the integer model will:
int8 per-output-channel weights and 8-bit activations on the calibrated grid ``[0, 127]``
(fake-quantized with straight-through gradients), indices rounded; export to integers then
loses little (the measured gap is reported).
"""

from __future__ import annotations

import math

import torch

from progs_codec.build import ACTIVATION_MAX, NUM_SCALES, NUM_STEPS, STEP_ONE_INDEX, load_tables

__all__ = ["ContextMLP", "round_ste", "rate_bits", "step_size", "sigma_steps", "float_layers",
           "SCALE_MIN", "SCALE_MAX"]

SCALE_MIN, SCALE_MAX = load_tables().scale_range    # spec 7.3: sigma in steps, 0.11..256
_STEPS_PER_OCTAVE = load_tables().steps_per_octave  # spec 7.3: step doubles every 8
_LOG2E = 1.0 / math.log(2.0)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 per output channel (no -128), straight-through."""
    scale = w.detach().abs().amax(1, keepdim=True).clamp_min(1e-12) / 127.0
    return round_ste(w / scale).clamp(-127, 127) * scale


class ContextMLP(torch.nn.Module):
    """Integer hash features ``[N, in_width]`` -> ``(mean, scale_idx, step_idx)``, ``[N, C]`` each.

    ``mean`` is in attribute units (the export scales it to ``2**-16``); ``mean_scale`` sets its
    unit per channel so that the raw outputs start near the attributes' spread.
    """

    def __init__(self, in_width: int, channels: int, hidden: tuple[int, ...] = (64, 64),
                 mean_scale: torch.Tensor | None = None):
        super().__init__()
        widths = [in_width, *hidden, 3 * channels]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.channels = channels
        self.quantize = False
        # Activation scale of each hidden layer's output: activation = integer * scale.
        self.register_buffer("act_scale", torch.ones(len(hidden)))
        self.register_buffer("mean_scale", torch.ones(channels) if mean_scale is None
                             else mean_scale.clone().float())
        with torch.no_grad():
            last = self.layers[-1]
            last.weight.mul_(0.1)
            last.bias.zero_()
            last.bias[channels:2 * channels] = 20.0              # sigma of a few steps
            last.bias[2 * channels:] = float(STEP_ONE_INDEX)     # base step
        self.inputs_scale = 1.0 / 127.0  # inputs are integers in [-127, 127]

    @torch.no_grad()
    def calibrate(self, inputs: torch.Tensor) -> None:
        """Set each hidden layer's activation scale so its maximum maps to 127, as
        :func:`progs_codec.build.build_model` does on the same inputs."""
        h = inputs * self.inputs_scale
        for i, layer in enumerate(self.layers[:-1]):
            h = torch.relu(layer(h))
            self.act_scale[i] = h.max().clamp_min(1e-12) / ACTIVATION_MAX

    def raw(self, inputs: torch.Tensor) -> torch.Tensor:
        """The last layer's ``[N, 3C]`` outputs before splitting (index units for s and t)."""
        h = inputs * self.inputs_scale
        for i, layer in enumerate(self.layers):
            w = _fake_quant_weight(layer.weight) if self.quantize else layer.weight
            h = torch.nn.functional.linear(h, w, layer.bias)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
                if self.quantize:
                    s = self.act_scale[i]
                    h = round_ste(torch.clamp(h / s, 0, ACTIVATION_MAX)) * s
        return h

    def forward(self, inputs: torch.Tensor):
        y = self.raw(inputs)
        c = self.channels
        mean = y[:, :c] * self.mean_scale
        scale_idx, step_idx = y[:, c:2 * c], y[:, 2 * c:]
        if self.quantize:
            scale_idx, step_idx = round_ste(scale_idx), round_ste(step_idx)
        return (mean, scale_idx.clamp(0, NUM_SCALES - 1), step_idx.clamp(0, NUM_STEPS - 1))


def step_size(base_step: torch.Tensor, step_idx: torch.Tensor) -> torch.Tensor:
    """Spec 7.2's step in attribute units: ``base * 2**((t - 16) / 8)``."""
    return base_step * torch.exp2((step_idx - STEP_ONE_INDEX) / _STEPS_PER_OCTAVE)


def sigma_steps(scale_idx: torch.Tensor) -> torch.Tensor:
    """Spec 7.3's standard deviation in steps for a (continuous) scale index."""
    return SCALE_MIN * torch.exp(scale_idx * (math.log(SCALE_MAX / SCALE_MIN) / (NUM_SCALES - 1)))


def rate_bits(x: torch.Tensor, mean: torch.Tensor, scale_idx: torch.Tensor,
              step: torch.Tensor, *, pull_outliers: bool = True) -> torch.Tensor:
    """Bits of each (noisy or quantized) value ``x`` under the predicted Gaussian, ``[N, C]``.

    ``step`` is the quantization step in attribute units. Where the bin probability falls
    below ``2**-24`` (the coder's precision; such values are escapes, spec 7.5) the bits are
    the Gaussian's negative log density times the step, which keeps a gradient that widens
    the predicted scale or moves the mean: a flat floor had none, so outliers stayed put
    and cost about 45 real bits each where the loss counted 24.

    ``pull_outliers=False`` gives those escapes' bits no gradient towards the values (only
    towards the predicted mean and scale): a quadratic pull on far outliers otherwise
    dominates the image loss while the context model is still untrained (3,900 bits per
    value at the start of the rate phase measured on plant).
    """
    sigma = sigma_steps(scale_idx) * step
    distance = (x - mean).abs()
    far = distance if pull_outliers else (x.detach() - mean).abs()
    z_hi = (distance + step / 2) / (sigma * math.sqrt(2.0))
    z_lo = (distance - step / 2) / (sigma * math.sqrt(2.0))
    p = 0.5 * (torch.erfc(z_lo) - torch.erfc(z_hi))      # tails in erfc: no 1 - 1 cancellation
    tail = (far / sigma) ** 2 / (2 * math.log(2.0)) + \
        torch.log2(sigma * math.sqrt(2 * math.pi) / step)
    floor = 2.0 ** -24
    return torch.where(p > floor, -torch.log2(p.clamp_min(floor)),
                       torch.maximum(tail, torch.full_like(tail, 24.0)))


def float_layers(model: ContextMLP) -> list[tuple]:
    """The MLP as :func:`progs_codec.build.build_model`'s float context layers ``[(W, b), ...]``: inputs
    ``/ 127``, mean rows scaled to attribute units."""
    out = []
    for i, layer in enumerate(model.layers):
        w = layer.weight.detach().double().cpu().clone()
        b = layer.bias.detach().double().cpu().clone()
        if i == len(model.layers) - 1:
            c = model.channels
            gain = model.mean_scale.detach().double().cpu()
            w[:c] *= gain[:, None]
            b[:c] *= gain
        out.append((w.numpy().astype("float32"), b.numpy().astype("float32")))
    return out
