"""progs-codec CLI: matches the API, errors are one line with exit status 2."""

import subprocess
import sys

from progs_codec import encode
from progs_codec.cli import main
from progs_codec.testing import synthetic_model


def test_decode_command(tmp_path, capsys):
    path = tmp_path / "s.progs"
    path.write_bytes(encode(synthetic_model(300, 3, 0, attribute_coding="raw")))
    assert main(["decode", str(path), "--max-lod", "2"]) == 0
    assert "decoded LoD 2 of 3" in capsys.readouterr().out


def test_bad_stream_is_one_line_and_status_2(tmp_path):
    path = tmp_path / "bad.progs"
    path.write_bytes(b"not a progs file at all")
    result = subprocess.run([sys.executable, "-m", "progs_codec.cli", "inspect", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "bad magic" in result.stderr and "Traceback" not in result.stderr


def test_missing_file_is_status_1(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.progs")]) == 1
    assert "No such file" in capsys.readouterr().err
