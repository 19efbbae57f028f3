"""``progs-codec view``: a loopback server for the streaming viewer's page and the stream
(progs_codec.tools.serve), its URL printed; argparse validation and one-line errors. A stand-in
page folder is enough here (no node); tests/test_web_viewer.py loads the real page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from progs_codec.tools.cli import main
from progs_codec.tools.serve import find_viewer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "plant.progs"


@pytest.fixture
def page(tmp_path):
    folder = tmp_path / "dist"
    folder.mkdir()
    for name in ("index.html", "viewer.js", "viewer-worker.js"):
        (folder / name).write_text(f"<!-- {name} -->")
    return folder


def test_view_serves_the_page_and_the_stream_with_ranges(page):
    proc = subprocess.Popen([sys.executable, "-m", "progs_codec", "view", str(SAMPLE), "--page",
                             str(page), "--mbit", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"serving {SAMPLE}") and "5 of 5 levels" in first, first
        line = proc.stdout.readline()
        assert line.startswith("open http://127.0.0.1:"), line
        url = line.split()[1]
        assert url.endswith("?src=stream/plant.progs&mbit=2")
        base = url.split("?")[0]
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200 and b"index.html" in r.read()
        request = urllib.request.Request(base + "stream/plant.progs", headers={"Range": "bytes=0-17"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes 0-17/{SAMPLE.stat().st_size}"
            assert r.read() == SAMPLE.read_bytes()[:18]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err


def test_view_errors_are_one_line(page, tmp_path, capsys):
    assert main(["view", str(tmp_path / "missing.progs"), "--page", str(page)]) == 1
    assert capsys.readouterr().err.strip() == \
        f"progs-codec view: error: {tmp_path / 'missing.progs'} is not a file"
    assert main(["view", str(SAMPLE), "--page", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "the viewer page is not built" in err and "npm run build" in err
    for bad in (["--port", "70000"], ["--mbit", "0"], ["--mbit", "x"], ["--rtt-ms", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["view", str(SAMPLE), "--page", str(page), *bad])
        assert exit_info.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_view_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["view", "--help"])
    out = capsys.readouterr().out
    for text in ("default 127.0.0.1", "default 0: a free one", "default: none", "default 0)",
                 "default: web/dist"):
        assert text in out


def test_find_viewer_names_the_build_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="npm ci && npm run build"):
        find_viewer(tmp_path)
