"""CPU smoke test: a tiny plant model trains, its PSNR rises, its stream decodes by LoD."""

import json

import numpy as np
import pytest
import torch

from progs_codec import decode, inspect
from progs_codec.entropy.attributes import level_contexts
from progs_training.cli import main
from progs_training.context_torch import ContextMLP, float_layers
from progs_training.export import build, evaluate_stream, write_progs
from progs_training.octree_ops import check_strict
from progs_training.train import TrainConfig, train

TINY = TrainConfig(iterations=100, num_levels=3, target_anchors=250, rate_batch=512,
                   infonce_batch=64, adjust_every=25, seed=0)


@pytest.fixture(scope="module")
def trained(plant_tiny):
    return train(plant_tiny, TINY)


def test_psnr_rises_and_octree_stays_strict(trained):
    log = trained.log
    first, last = log[0]["psnr"][3], log[-1]["psnr"][3]
    assert last > first + 2.0, (first, last)
    assert any("adjust" in entry for entry in log)
    check_strict(trained.model.tree)
    assert any(e.get("bits_per_value") for e in log)          # the rate phase ran


def test_stream_decodes_every_lod(trained, plant_tiny, tmp_path):
    built = build(trained.model)
    stream = write_progs(built.model, tmp_path / "plant.progs")
    assert (tmp_path / "plant.progs").read_bytes() == stream
    assert not list(tmp_path.glob(".*tmp"))
    decoded = decode(stream)
    assert decoded.lod == 3 and decoded.num_anchors() == len(trained.model.tree)
    for lod in (1, 2):
        prefix = stream[: inspect(stream).levels[lod - 1].cumulative_bytes]
        assert decode(prefix).lod == lod
    quality = evaluate_stream(stream, plant_tiny.test[:3], backend="cpu")
    assert [q.lod for q in quality] == [1, 2, 3]
    assert quality[-1].psnr > 12 and quality[0].stream_bytes < quality[-1].stream_bytes
    gap = built.rate_gap
    assert gap.coded_bits > 0 and gap.coder_overhead < 0.05


def test_exported_context_model_tracks_the_quantized_float_model():
    rng = np.random.default_rng(0)
    inputs = torch.tensor(rng.integers(-127, 128, (512, 16)), dtype=torch.float32)
    net = ContextMLP(16, 5, (32,))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    net.calibrate(inputs)
    net.quantize = True
    mean, scale_idx, step_idx = (t.detach().numpy() for t in net(inputs))
    from progs_codec.entropy.context_model import predict
    from progs_codec.entropy.export import export_context_model
    integer = export_context_model(float_layers(net), inputs.numpy().astype(np.int32))
    imean, iscale, istep = predict(integer, inputs.numpy().astype(np.int32))
    assert np.abs(iscale - scale_idx).max() <= 1 and np.abs(istep - step_idx).max() <= 1
    assert np.abs(imean / 65536 - mean).max() < 0.05 * (np.abs(mean).max() + 1)
    assert level_contexts is not None


def test_cli_writes_stream_and_log(data_dir, tmp_path, capsys):
    out = tmp_path / "lego.progs"
    code = main(["--data", str(data_dir / "images" / "lego_200"), "--out", str(out),
                 "--iters", "10", "--levels", "2", "--size", "16", "--target-anchors", "100",
                 "--quiet"])
    assert code == 0 and decode(out.read_bytes()).lod == 2
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["machine"] and len(report["lods"]) == 2 and report["test_views"] == 13
    assert "LoD 2" in capsys.readouterr().out


@pytest.mark.parametrize("source", ["images/lego_200", "colmap/maupertuis"])
def test_inputs_people_have_train_end_to_end(data_dir, tmp_path, source):
    """A NeRF folder (lego, visual hull) and a COLMAP model with real photos (maupertuis,
    4 drone photos, 1,039 points) train on the CPU and write a stream that decodes LoD by
    LoD."""
    out = tmp_path / "scene.progs"
    code = main(["--data", str(data_dir / source), "--out", str(out), "--iters", "12",
                 "--levels", "3", "--size", "24", "--target-anchors", "300",
                 "--context-hidden", "16", "--quiet"])
    assert code == 0
    stream = out.read_bytes()
    info = inspect(stream)
    for lod in (1, 2, 3):
        prefix = stream[: info.levels[lod - 1].cumulative_bytes]
        assert decode(prefix).lod == lod
    report = json.loads(out.with_suffix(".json").read_text())
    assert [q["lod"] for q in report["lods"]] == [1, 2, 3]
    sizes = report["anchors_per_level"]
    assert all(a < b for a, b in zip(sizes, sizes[1:]))       # a strictly growing octree


def test_cli_reports_missing_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:       # argparse's usage error: exit status 2
        main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x.progs"), "--quiet"])
    assert info.value.code == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_escapes_can_leave_the_values_alone():
    """``pull_outliers=False``: a value far outside its predicted Gaussian costs the same bits,
    but only the prediction (mean, scale) gets their gradient."""
    from progs_training.context_torch import rate_bits

    x = torch.tensor([[0.2, 40.0]], requires_grad=True)
    mean = torch.zeros(1, 2, requires_grad=True)
    scale, step = torch.full((1, 2), 10.0), torch.ones(1, 2)
    pulled = rate_bits(x, mean, scale, step)
    left = rate_bits(x, mean, scale, step, pull_outliers=False)
    assert torch.allclose(pulled, left) and float(left[0, 1].detach()) > 24
    left.sum().backward()
    assert x.grad[0, 1] == 0 and x.grad[0, 0] != 0 and mean.grad[0, 1] != 0
