"""Image-space fine-tuning of a finished model: integer context model read back as float
layers, a few steps against views, re-export through build_model keeping ``refine``."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from progs_codec import Refinement, decode, encode
from progs_codec.entropy.context_model import predict
from progs_codec.entropy.export import float_predict
from progs_codec.build import context_inputs
from progs_training.finetune import FinetuneConfig, finetune, float_context_layers

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plant.progs"


@pytest.fixture(scope="module")
def sample():
    return decode(SAMPLE.read_bytes())


def test_float_layers_reproduce_the_integer_context_model(sample):
    entropy = sample.entropy_model
    inputs = context_inputs(entropy.hash_grid, sample.frame, sample.levels)
    mean_i, scale_i, step_i = predict(entropy.context_model, inputs)
    mean_f, scale_f, step_f = float_predict(float_context_layers(sample), inputs)
    # the integer model clips and floors; the float twin does neither
    assert np.mean(np.abs(np.clip(scale_f, 0, 63) - scale_i) <= 1) > 0.99
    assert np.mean(np.abs(np.clip(step_f, 0, 31) - step_i) <= 1) > 0.99
    dims = sample.dims
    base = np.repeat(np.asarray(entropy.base_steps) / 65536.0,
                     [dims.feature, dims.scaling, 3 * dims.num_offsets])
    step = base * 2.0 ** ((step_i - 16.0) / 8)
    err = np.abs(mean_f - mean_i / 65536.0) / step          # in predicted steps
    # the integer model rounds its hidden activations: the log scalings (finest steps) feel
    # that most; a wrong conversion would be off by orders of magnitude
    assert np.median(err) < 0.05 and np.quantile(err, 0.99) < 5


@pytest.mark.parametrize("refine", [Refinement.ADD, Refinement.REPLACE])
def test_finetune_keeps_structure_and_refine(sample, plant_tiny, refine):
    progs = replace(sample, refine=refine)
    views = plant_tiny.train[:2]
    result = finetune(progs, views, FinetuneConfig(steps=2, device="cpu"))
    model = result.built.model
    assert model.refine == refine and model.frame == progs.frame
    assert [len(lv) for lv in model.levels] == [len(lv) for lv in progs.levels]
    for a, b in zip(model.levels, progs.levels):
        assert np.array_equal(a.coords, b.coords)
    again = decode(encode(model))
    assert again.refine == refine and again.lod == progs.frame.num_levels
    assert len(result.log) >= 1 and set(result.log[-1]["psnr"]) == {1, 2, 3, 4, 5}
    # two small steps move the values by about a quantization step at most
    before = np.concatenate([lv.feature for lv in progs.levels])
    after = np.concatenate([lv.feature for lv in again.levels])
    assert np.median(np.abs(after - before)) < 0.5
