"""serve: byte ranges over loopback HTTP, a throttled client, and the streaming example."""

import http.client
import importlib.util
import sys
import time
from pathlib import Path

import pytest

from progs_codec import inspect
from progs_codec.tools.serve import (HTTPError, RangeClient, Throttle, parse_range,
                                     serve_directory)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "plant.progs"


@pytest.mark.parametrize("header, expected", [
    (None, None), ("bytes=0-0", (0, 1)), ("bytes=10-19", (10, 20)), ("bytes=90-", (90, 100)),
    ("bytes=-10", (90, 100)), ("bytes=-500", (0, 100)), ("bytes=95-500", (95, 100)),
    ("bytes=5-4", None), ("bytes=0-1,4-5", None), ("items=0-3", None), ("bytes=-", None)])
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-160", "bytes=-0"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(ValueError):
        parse_range(header, 100)


@pytest.fixture()
def served(tmp_path):
    data = bytes(range(256)) * 40
    (tmp_path / "a.progs").write_bytes(data)
    (tmp_path / "sub").mkdir()
    with serve_directory(tmp_path) as base_url:
        yield base_url, data


def test_ranges_on_one_connection(served):
    base_url, data = served
    port = int(base_url.rsplit(":", 1)[1].strip("/"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for header, status, body in (("bytes=10-19", 206, data[10:20]), (None, 200, data),
                                 ("bytes=-7", 206, data[-7:]),
                                 (f"bytes={len(data)}-", 416, b"")):
        conn.request("GET", "/a.progs", headers={"Range": header} if header else {})
        response = conn.getresponse()
        assert (response.status, response.read()) == (status, body)
        if status == 206:
            assert response.headers["Content-Range"].endswith(f"/{len(data)}")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    for path in ("/sub/", "/missing.progs", "/../../etc/passwd"):
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.status == 404, path
    conn.close()


def test_client_fetches_and_throttles(served):
    base_url, data = served
    with RangeClient(base_url) as client:
        assert client.size("a.progs") == len(data)
        assert client.fetch("a.progs", 100, 200) == data[100:200]
        assert client.fetch("a.progs") == data
        assert client.requests == 3
        with pytest.raises(HTTPError, match="status 404"):
            client.fetch("nope.progs")
    rate = 40_000  # bytes per second: the 10 kB file takes 0.25 s at least
    with RangeClient(base_url, rate=rate, piece=1000) as client:
        start = time.monotonic()
        assert client.fetch("a.progs") == data
        assert time.monotonic() - start >= len(data) / rate - 0.03


def test_throttle_schedule():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(1000.0, clock=lambda: now[0], sleep=sleep)
    throttle.wait(500)                 # 500 bytes at 1000 B/s: half a second
    throttle.pause(0.1)                # a round trip
    now[0] += 2.0                      # the reader was busy: no burst to catch up
    throttle.wait(1000)
    assert slept == pytest.approx([0.5, 0.1, 1.0]) and throttle.elapsed() == pytest.approx(3.6)
    with pytest.raises(ValueError):
        Throttle(0)


def load_example():
    spec = importlib.util.spec_from_file_location("stream_http", ROOT / "examples" /
                                                  "stream_http.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_streaming_example_end_to_end(tmp_path):
    """The sample over loopback at 40 Mbit/s: every LoD arrives, decodes and is drawn, by
    range requests (header, then one per level) and by one GET; the SPZ twin after it."""
    example = load_example()
    info = inspect(SAMPLE)
    results = example.run(SAMPLE, mbit=40.0, rtt_ms=1.0, size=16, out=tmp_path,
                          source_scene=None)
    levels = len(info.levels)
    assert results["requests"] == {"ranges": 2 + levels, "get": 1, "baked.spz": 1}
    for mode in ("ranges", "get"):
        events = results[mode]
        assert [e.label for e in events] == [f"LoD {k}" for k in range(1, levels + 1)]
        assert [e.anchors for e in events] == [lv.lod_anchors for lv in info.levels]
        for event, level in zip(events, info.levels):
            assert event.bytes >= level.cumulative_bytes - 12 * (mode == "ranges")
            assert event.arrived <= event.decoded <= event.image
            assert event.path.exists()
        assert [e.image for e in events] == sorted(e.image for e in events)
    assert results["ranges"][0].bytes == info.levels[0].cumulative_bytes
    (spz,) = results["spz"]
    assert spz.path.exists() and spz.bytes > 0
    text = example.format_timeline(results, mbit=40.0, rtt_ms=1.0, total=info.total_bytes)
    assert "range requests" in text and "first image" in text
