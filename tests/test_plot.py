"""Bit allocation per LoD (tools/plot.py) and ``progs-codec inspect --plot``."""

import json
import sys

import pytest

from progs_codec import encode, inspect
from progs_codec.testing import synthetic_model
from progs_codec.tools.cli import main
from progs_codec.tools.plot import PlotError, bit_allocation, plot_bit_allocation


@pytest.fixture(scope="module")
def stream():
    return encode(synthetic_model(400, 3, seed=4))


def test_components_add_up_to_each_prefix(stream):
    info = inspect(stream)
    lods, parts = bit_allocation(info)
    assert lods == [1, 2, 3]
    assert list(parts) == ["hash_grid", "context_mlp", "gaussian_mlps", "other", "structure",
                           "feature", "scaling", "offsets"]
    for i, level in enumerate(info.levels):
        assert sum(p[i] for p in parts.values()) == level.cumulative_bytes
    # The JSON of inspect --json gives the same numbers.
    assert bit_allocation(json.loads(json.dumps(info.to_dict()))) == (lods, parts)


def test_header_parts_the_plot_does_not_know_are_stacked_too(stream):
    data = inspect(stream).to_dict()
    data["header_bytes"]["rendering"] = 7      # a future HEAD part
    _, parts = bit_allocation(data)
    assert parts["rendering"] == [7, 7, 7]
    pytest.importorskip("matplotlib")
    figure = plot_bit_allocation(data)
    assert "rendering" in [t.get_text() for t in figure.axes[0].get_legend().get_texts()]


def test_inspect_plot_writes_a_png(stream, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "s.progs"
    path.write_bytes(stream)
    out = tmp_path / "bits.png"
    assert main(["inspect", str(path), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in capsys.readouterr().out
    # With --json, stdout stays pure JSON.
    assert main(["inspect", "--json", str(path), "--plot", str(tmp_path / "b.svg")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["total_bytes"] == len(stream)
    assert (tmp_path / "b.svg").read_text().lstrip().startswith("<?xml")


def test_missing_matplotlib_is_one_clear_line(stream, tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib fails
    with pytest.raises(PlotError, match="pip install"):
        plot_bit_allocation(inspect(stream), tmp_path / "x.png")
    path = tmp_path / "s.progs"
    path.write_bytes(stream)
    assert main(["inspect", str(path), "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "x.png").exists()


def test_plot_output_is_checked_before_the_work(stream, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "s.progs"
    path.write_bytes(stream)
    assert main(["inspect", str(path), "--plot", str(tmp_path / "bits.jpg")]) == 2
    err = capsys.readouterr().err
    assert "unknown plot format '.jpg'" in err and err.strip().count("\n") == 0
    assert main(["inspect", str(path), "--plot", str(tmp_path / "no" / "bits.png")]) == 1
    captured = capsys.readouterr()
    assert "does not exist" in captured.err and captured.out == ""   # nothing inspected
