"""truncate: a complete stream of LoDs 1..k whose decoded levels are the original's, bit for bit."""

import json
import lzma
import subprocess
import sys
from pathlib import Path

import pytest

from progs_codec import TruncatedError, decode, encode, inspect, truncate
from progs_codec.format.container import FILE_HEADER_SIZE
from progs_codec.format.header import split_parts
from progs_codec.testing import synthetic_model
from progs_codec.tools.canonical import canonical_dump, split_dump
from progs_codec.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
VECTORS = sorted(p for p in (ROOT / "conformance" / "vectors").iterdir() if p.is_dir())


def read_vector(case: Path) -> bytes:
    name = json.loads((case / "expected.json").read_text())["stream"]
    data = (case / name).read_bytes()
    return lzma.decompress(data) if name.endswith(".xz") else data


def same_levels(a, b) -> bool:
    """Bit for bit: every array of every level has the same dtype, shape and bytes."""
    fields = ("coords", "parent_index", "octant", "feature", "scaling", "offsets")
    return len(a.levels) == len(b.levels) and all(
        getattr(x, f).dtype == getattr(y, f).dtype and getattr(x, f).shape == getattr(y, f).shape
        and getattr(x, f).tobytes() == getattr(y, f).tobytes()
        for x, y in zip(a.levels, b.levels) for f in fields)


def head_payload(stream: bytes) -> bytes:
    length = int.from_bytes(stream[FILE_HEADER_SIZE + 4: FILE_HEADER_SIZE + 8], "little")
    return stream[FILE_HEADER_SIZE + 8: FILE_HEADER_SIZE + 8 + length]


@pytest.mark.parametrize("case", VECTORS, ids=lambda p: p.name)
def test_every_vector_at_every_lod(case):
    stream = read_vector(case)
    total = inspect(stream).frame.num_levels
    for k in range(1, total):
        cut = truncate(stream, k)
        assert cut[:FILE_HEADER_SIZE] == stream[:FILE_HEADER_SIZE]   # version kept
        info = inspect(cut)
        assert info.complete and info.frame.num_levels == k and len(info.levels) == k
        model, reference = decode(cut, strict=True), decode(stream, max_lod=k)
        assert same_levels(model, reference)
        # The canonical dump (spec 10) agrees but for num_levels in FRAM.
        ours, theirs = (split_dump(canonical_dump(m)) for m in (model, reference))
        assert ours[1:] == theirs[1:] and ours[0].name == "FRAM"
        # Every HEAD part but frame and toc, and anything after the parts, byte for byte.
        new, old = head_payload(cut), head_payload(stream)
        new_parts, old_parts = split_parts(new), split_parts(old)
        for name in old_parts:
            if name not in ("frame", "toc"):
                assert new_parts[name] == old_parts[name], name
        assert new.endswith(old[sum(4 + len(p) for p in old_parts.values()):])
        assert [c for c in info.optional_chunks] == \
            [c for c in inspect(stream).optional_chunks]
    assert truncate(stream, total) == stream and truncate(stream, total + 3) == stream


def test_extra_header_parts_and_optional_chunks_are_kept():
    minor = read_vector(ROOT / "conformance" / "vectors" / "raw-minor-version")
    assert head_payload(truncate(minor, 1)).endswith(b"later")
    optional = read_vector(ROOT / "conformance" / "vectors" / "raw-optional-chunks")
    kinds = [t for t, _ in inspect(truncate(optional, 1)).optional_chunks]
    assert kinds == ["xtra", "nOTE", "zzzz"]


def test_the_independent_decoder_reads_a_truncated_stream(tmp_path):
    """Written from the spec alone, it decodes the cut stream to the original's LoD 2."""
    stream = encode(synthetic_model(300, 3, seed=4))
    (tmp_path / "cut.progs").write_bytes(truncate(stream, 2))
    decoder = [sys.executable, str(ROOT / "conformance" / "independent_decoder")]
    subprocess.run(decoder + [str(tmp_path / "cut.progs"), "2", str(tmp_path / "dump")],
                   check=True, capture_output=True)
    ours = split_dump((tmp_path / "dump").read_bytes())
    assert ours[1:] == split_dump(canonical_dump(decode(stream, max_lod=2)))[1:]


def test_prefixes_and_errors():
    stream = encode(synthetic_model(300, 3, seed=2, attribute_coding="raw"))
    info = inspect(stream)
    prefix = stream[: info.levels[1].cumulative_bytes]
    assert truncate(prefix, 2) == truncate(stream, 2)
    with pytest.raises(TruncatedError, match="holds 1 of 3 levels and stops before level 2"):
        truncate(stream[: info.levels[1].cumulative_bytes - 1], 2)
    with pytest.raises(TruncatedError, match="before its end"):
        truncate(stream[:-1], 3)
    for bad in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError, match="max_lod"):
            truncate(stream, bad)


def test_truncate_command(tmp_path, capsys):
    src = tmp_path / "s.progs"
    src.write_bytes(encode(synthetic_model(300, 3, seed=3, attribute_coding="raw")))
    out = tmp_path / "s2.progs"
    assert main(["truncate", str(src), "--max-lod", "2", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and decode(out).complete
    assert decode(out).levels == decode(src, max_lod=2).levels
    for argv, message in ((["--max-lod", "0", "-o", str(out)], "--max-lod"),
                          (["-o", str(out)], "--max-lod"),
                          (["--max-lod", "2", "-o", str(tmp_path / "no" / "x.progs")],
                           "does not exist")):
        try:
            status = main(["truncate", str(src), *argv])
        except SystemExit as exit:
            status = exit.code
        assert status in (1, 2) and message in capsys.readouterr().err
    assert main(["truncate", str(src), "--max-lod", "2", "-o", str(src)]) == 2
    assert "would overwrite its input" in capsys.readouterr().err
