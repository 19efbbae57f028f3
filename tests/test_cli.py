"""progs-codec CLI: matches the API, errors are one line with exit status 2."""

import subprocess
import sys

from progs_codec import encode
from progs_codec.testing import synthetic_model
from progs_codec.tools.cli import main


def test_decode_command(tmp_path, capsys):
    path = tmp_path / "s.progs"
    path.write_bytes(encode(synthetic_model(300, 3, 0, attribute_coding="raw")))
    assert main(["decode", str(path), "--max-lod", "2"]) == 0
    assert "decoded LoD 2 of 3" in capsys.readouterr().out


def test_bad_stream_is_one_line_and_status_2(tmp_path):
    path = tmp_path / "bad.progs"
    path.write_bytes(b"not a progs file at all")
    result = subprocess.run([sys.executable, "-m", "progs_codec.tools.cli", "inspect", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "bad magic" in result.stderr and "Traceback" not in result.stderr


def test_missing_file_is_status_1(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.progs")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_render_and_export_commands(tmp_path, capsys):
    from PIL import Image

    from progs_codec.render.splats import read_splats

    path = tmp_path / "s.progs"
    path.write_bytes(encode(synthetic_model(300, 3, 0, attribute_coding="raw")))
    assert main(["render", str(path), "--lod", "1", "3", "--orbit", "2", "--size", "24",
                 "-o", str(tmp_path / "frames")]) == 0
    sheet = Image.open(tmp_path / "frames" / "contact_sheet.png")
    assert sheet.size == (2 * 24, 2 * 24)  # one row per LoD, one column per view
    assert sorted(p.name for p in (tmp_path / "frames").glob("lod*.png")) == [
        "lod1_view00.png", "lod1_view01.png", "lod3_view00.png", "lod3_view01.png"]
    assert main(["decode", str(path), "--max-lod", "2", "-o", str(tmp_path / "out.ply"),
                 "--sh-degree", "1"]) == 0
    assert read_splats(tmp_path / "out.ply").sh_degree == 1
    assert main(["render", str(path), "--lod", "5", "-o", str(tmp_path / "x")]) == 2
    assert "LoD 5 is not available" in capsys.readouterr().err


def test_conformance_run_is_the_runner(tmp_path, capsys):
    reference = f"{sys.executable} -m progs_codec.tools.canonical"
    results = tmp_path / "r.json"
    assert main(["conformance", "run", "--decoder", reference, "--select", "raw-basic|bad-magic",
                 "--results", str(results)]) == 0
    assert "passed" in capsys.readouterr().out and results.exists()
    assert main(["conformance", "run", "--decoder", "false", "--select", "raw-basic"]) == 1
