"""progs-codec CLI: matches the API, errors are one line with exit status 2."""

import subprocess
import sys

import pytest

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
    assert "wrote 4 views and" in capsys.readouterr().out
    sheet = Image.open(tmp_path / "frames" / "contact_sheet.png")
    # One row per LoD, one column per view, and a column of labels on the left.
    assert sheet.size[1] == 2 * 24 and sheet.size[0] > 2 * 24
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


@pytest.fixture(scope="module")
def small_stream(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "s.progs"
    path.write_bytes(encode(synthetic_model(200, 2, 0, attribute_coding="raw")))
    return path


# Every subcommand with bad values: each gives a one-line error and status 2 (argparse or a
# check before any decoding), never a traceback. "{s}" is the stream, "{t}" a temporary folder.
BAD_ARGUMENTS = [
    ("decode {s} --max-lod 0", "--max-lod: must be 1 or more, got 0"),
    ("decode {s} --max-lod -1", "--max-lod"),
    ("decode {s} --max-lod two", "expected an integer, 1 or more, got 'two'"),
    ("decode {s} --sh-degree 4 -o {t}/x.ply", "--sh-degree: must be 0..3, got 4"),
    ("decode {s} --sh-degree 3 -o {t}/x.splat", "--sh-degree 3: .splat files hold no SH"),
    ("decode {s} --sh-degree 1", "--sh-degree applies to the baked file"),
    ("decode {s} -o {t}/x.obj", "x.obj: unknown 3DGS format '.obj'"),
    ("decode {s} -o {t}/x", "unknown 3DGS format ''"),
    ("decode", "the following arguments are required: file"),
    ("decode {s} --max-anchors -1", "--max-anchors: must be 0 or more, got -1"),
    ("decode {s} --max-values lots", "--max-values: expected an integer, 0 or more"),
    ("decode {s} --max-anchors 10", "pass a larger max_anchors (--max-anchors)"),
    ("render {s} --max-values 5 -o {t}/frames", "pass a larger max_values (--max-values)"),
    ("render {s} --lod 0 -o {t}/frames", "--lod: must be 1 or more, got 0"),
    ("render {s} --lod 1 0 -o {t}/frames", "--lod: must be 1 or more"),
    ("render {s} --orbit 0 -o {t}/frames", "--orbit: must be 1 or more"),
    ("render {s} --size -3 -o {t}/frames", "--size: must be 1 or more"),
    ("render {s} --elevation 90 -o {t}/frames", "--elevation: must be an angle"),
    ("render {s} --elevation nan -o {t}/frames", "--elevation: must be an angle"),
    ("render {s} --up 0,0,0 -o {t}/frames", "--up: up must be an axis"),
    ("render {s} --up sideways -o {t}/frames", "--up: up must be an axis"),
    ("render {s} --backend vulkan -o {t}/frames", "invalid choice: 'vulkan'"),
    ("render {s} -o {t}/plant.png", "plant.png: render writes a folder of images"),
    ("render {s} --lod 5 -o {t}/frames", "LoD 5 is not available"),
    ("render {s}", "the following arguments are required: -o/--output"),
    ("inspect", "the following arguments are required: file"),
    ("frobnicate {s}", "invalid choice: 'frobnicate'"),
    ("conformance run --decoder true --jobs 0", "--jobs: expected a positive number"),
    ("conformance run --decoder true --timeout -1", "--timeout: expected a positive number"),
    ("conformance run --decoder true --timeout nan", "--timeout: expected a positive number"),
    ("conformance run --decoder ''", "--decoder is empty"),
    ("conformance run --decoder true --select (", "--select '(' is not a regular expression"),
    ("conformance run --decoder true --results {t}/no/r.json", "--results: [Errno 2] folder"),
    ("conformance run", "the following arguments are required: --decoder"),
]


@pytest.mark.parametrize("command, message", BAD_ARGUMENTS, ids=[c for c, _ in BAD_ARGUMENTS])
def test_bad_values_are_one_line_errors(command, message, small_stream, tmp_path, capsys):
    import shlex

    argv = shlex.split(command.format(s=small_stream, t=tmp_path))
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse
        status = exit.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert message in err
    assert "Traceback" not in err and err.strip().splitlines()[-1].count("error") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written, no folder made


def test_outputs_are_checked_before_decoding(small_stream, tmp_path, capsys, monkeypatch):
    """A mistake in -o costs no decoding, and names the path the user typed."""
    import progs_codec.codec

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before checking the output")

    monkeypatch.setattr(progs_codec.codec.Decoder, "feed", no_decoding)
    missing = tmp_path / "no" / "such" / "x.ply"
    assert main(["decode", str(small_stream), "-o", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"'{missing}'" in err and ".tmp" not in err and "does not exist" in err
    assert main(["decode", str(small_stream), "-o", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["render", str(small_stream), "-o", str(tmp_path / "file" / "frames")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_decode_of_a_prefix_says_where_it_stops(small_stream, tmp_path, capsys):
    data = small_stream.read_bytes()
    cut = tmp_path / "cut.progs"
    cut.write_bytes(data[: len(data) - 100])
    assert main(["decode", str(cut)]) == 0
    out = capsys.readouterr().out
    assert "decoded LoD 1 of 2" in out and "LoD anchors" in out and "level anchors" in out
    assert "the stream stops inside chunk LEVL" in out and "bytes present" in out


def test_render_up_and_elevation(small_stream, tmp_path, capsys):
    assert main(["render", str(small_stream), "--orbit", "1", "--size", "16", "--up", "+z",
                 "--elevation", "-30", "-o", str(tmp_path / "f")]) == 0
    assert "wrote 2 views and" in capsys.readouterr().out  # 2 LoDs x 1 view
    assert main(["render", str(small_stream), "--lod", "1", "--orbit", "1", "--size", "16",
                 "-o", str(tmp_path / "g")]) == 0
    assert "wrote 1 view and" in capsys.readouterr().out
    # a value that starts with '-' is the value of --up, not another option
    for up in ("-y", "-0.2,-1,0"):
        assert main(["render", str(small_stream), "--lod", "1", "--orbit", "1", "--size", "8",
                     "--up", up, "-o", str(tmp_path / "h")]) == 0


# The real command with the PLY writer stalled halfway (it has written a first piece).
_STALLED_WRITE = """
import signal, sys, time, plyfile
# as in a terminal: a suite started in the background (`cmd &`) inherits SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
def stalled(self, stream):
    with open(stream, "wb") as f:
        f.write(b"ply\\nformat binary_little_endian 1.0\\n")
    print("writing", flush=True)
    time.sleep(60)
plyfile.PlyData.write = stalled
from progs_codec.tools.cli import main
sys.exit(main(["decode", sys.argv[1], "-o", sys.argv[2]]))
"""


@pytest.mark.parametrize("signame, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_interrupted_write_leaves_no_file(signame, status, small_stream, tmp_path):
    """decode -o killed halfway through the write: no file under the name, no temporary."""
    import signal

    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _STALLED_WRITE, str(small_stream),
                             str(out / "scene.ply")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("decoded")
        assert proc.stdout.readline().strip() == "writing"
        assert [p.name.startswith(".scene.") for p in out.iterdir()] == [True]  # half written
        proc.send_signal(getattr(signal, signame))
        assert proc.wait(timeout=60) == status
    finally:
        proc.kill()
    assert list(out.iterdir()) == []
