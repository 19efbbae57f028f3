"""The chunk walker: chunk order, table of contents, stopping early (spec 2.3, 8.1-8.3)."""

import pytest

from progs_codec import FormatError, LimitError, TruncatedError, UnsupportedError, encode
from progs_codec.format.container import FILE_HEADER_SIZE, ChunkReader, write_chunk
from progs_codec.format.walker import ChunkWalker
from progs_codec.testing import synthetic_model


@pytest.fixture(scope="module")
def stream():
    return encode(synthetic_model(300, 3, seed=4, attribute_coding="raw"))


def _chunks(stream):
    reader = ChunkReader()
    reader.feed(stream)
    return list(iter(reader.next_chunk, None))


def _steps(data, **options):
    walker = ChunkWalker(**options)
    walker.feed(data)
    return walker, [s for s in iter(walker.next_step, None)]


def test_steps_of_a_stream_and_of_a_prefix(stream):
    walker, steps = _steps(stream)
    assert [s.kind for s in steps] == ["head", "level", "level", "level", "end"]
    assert [s.level.level for s in steps if s.kind == "level"] == [1, 2, 3]
    assert walker.ended and walker.level_counts == [s.level.anchor_count for s in steps[1:4]]
    cut = steps[2].chunk.offset + 5                      # inside level 2
    walker, steps = _steps(stream[:cut])
    assert [s.kind for s in steps] == ["head", "level"] and not walker.ended
    assert walker.offset == steps[1].chunk.offset + steps[1].chunk.size


def test_bytes_fed_one_at_a_time(stream):
    walker, kinds = ChunkWalker(), []
    for i in range(len(stream)):
        walker.feed(stream[i:i + 1])
        kinds += [s.kind for s in iter(walker.next_step, None)]
    assert kinds == ["head", "level", "level", "level", "end"]
    with pytest.raises(FormatError, match="data after ENDS"):
        walker.feed(b"x")


def test_optional_chunks_pass_critical_ones_do_not(stream):
    chunks = _chunks(stream)
    head_end = FILE_HEADER_SIZE + chunks[0].size
    extra = write_chunk(b"teXt", b"hello")
    # an optional chunk between HEAD and LEVL 1 would move the levels: put it before ENDS
    ends = len(stream) - 12
    walker, steps = _steps(stream[:ends] + extra + stream[ends:])
    assert [s.kind for s in steps][-2:] == ["optional", "end"]
    with pytest.raises(UnsupportedError, match="unknown critical chunk TEXT"):
        _steps(stream[:ends] + write_chunk(b"TEXT", b"") + stream[ends:])
    with pytest.raises(FormatError, match="second HEAD"):
        _steps(stream[:head_end] + stream[FILE_HEADER_SIZE:head_end] + stream[head_end:])
    with pytest.raises(FormatError, match="first chunk is teXt"):
        _steps(stream[:FILE_HEADER_SIZE] + extra)


def test_levels_must_sit_where_the_toc_says(stream):
    chunks = _chunks(stream)
    level1 = chunks[1]
    start = level1.offset
    moved = stream[:start] + write_chunk(b"teXt", b"") + stream[start:]
    with pytest.raises(FormatError, match="table of contents") as info:
        _steps(moved)
    assert info.value.chunk == "LEVL 1"


def test_ends_rules(stream):
    ends = len(stream) - 12
    with pytest.raises(FormatError, match="3 bytes after ENDS"):
        _steps(stream + b"abc")
    with pytest.raises(FormatError, match="ENDS payload is not empty"):
        _steps(stream[:ends] + write_chunk(b"ENDS", b"x"))
    last = _chunks(stream)[3]
    with pytest.raises(FormatError, match="ENDS after 2 of 3 levels"):
        _steps(stream[:last.offset] + write_chunk(b"ENDS", b""))


def test_anchor_cap_and_truncated_header(stream):
    total = sum(len(level) for level in synthetic_model(300, 3, seed=4,
                                                        attribute_coding="raw").levels)
    with pytest.raises(LimitError, match="max_anchors"):
        _steps(stream, max_anchors=total - 1)
    _steps(stream, max_anchors=total)
    walker, steps = _steps(stream[:40])
    assert steps == [] and walker.header is None
    assert isinstance(walker.truncated_header_error(), TruncatedError)
