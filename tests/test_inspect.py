"""inspect: sizes add up and the JSON contract holds."""

import json

import pytest

from progs_codec import decode, encode, inspect
from progs_codec.testing import synthetic_model
from progs_codec.tools.cli import main
from progs_codec.tools.inspect import format_info


@pytest.fixture(scope="module")
def stream():
    return encode(synthetic_model(600, 4, seed=5, attribute_coding="raw"))


def test_sizes_add_up(stream):
    info = inspect(stream)
    assert info.total_bytes == len(stream)
    assert info.complete
    levels_total = sum(lv.bytes for lv in info.levels)
    assert sum(info.header_bytes.values()) + levels_total + 12 == len(stream)  # + ENDS
    model = decode(stream)
    for lv, level in zip(info.levels, model.levels):
        assert lv.anchors == len(level)
        assert lv.bytes == 12 + 10 + lv.structure_bytes + sum(lv.attribute_bytes.values()) + 12
        # Exactly the prefix a client fetches for this LoD.
        assert decode(stream[: lv.cumulative_bytes]).lod == lv.lod


def test_json_contract(stream, capsys, tmp_path):
    path = tmp_path / "s.progs"
    path.write_bytes(stream)
    assert main(["inspect", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"version", "total_bytes", "header_bytes", "levels", "refine"} <= out.keys()
    assert out["version"] == "1.0" and out["refine"] == "add"
    assert set(out["header_bytes"]) == {"hash_grid", "context_mlp", "gaussian_mlps", "other"}
    assert out["pending"] is None
    total = 0
    for lv in out["levels"]:
        assert {"lod", "anchors", "lod_anchors", "bytes", "structure_bytes",
                "attribute_bytes"} <= lv.keys()
        total += lv["anchors"]                      # level anchors: this level's alone
        assert lv["lod_anchors"] == total           # LoD anchors: levels 1..lod
        assert lv["structure_mode"] in ("fixed", "occupancy")
        assert set(lv["attribute_bytes"]) == {"feature", "scaling", "offsets"}


def test_refine_is_reported(capsys, tmp_path):
    import dataclasses

    from progs_codec import Refinement

    model = dataclasses.replace(synthetic_model(200, 2, seed=6, attribute_coding="raw"),
                                refine=Refinement.REPLACE)
    path = tmp_path / "r.progs"
    path.write_bytes(encode(model))
    info = inspect(path)
    assert info.version == (1, 1) and info.refine is Refinement.REPLACE
    assert "refine replace" in format_info(info)
    assert main(["inspect", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["refine"] == "replace" and out["version"] == "1.1"
    assert "refine add" in format_info(inspect(encode(synthetic_model(50, 1, seed=1))))


def test_prefix_and_text(stream):
    info = inspect(stream[: len(stream) // 2])
    assert not info.complete and 0 < len(info.levels) < 4
    text = format_info(info)
    assert "prefix" in text and "bits/anchor" in text
    assert "level anchors" in text and "LoD anchors" in text


def test_a_prefix_says_where_it_stops(stream):
    """inspect names the cut chunk and its byte counts, as decode does."""
    info = inspect(stream)
    cut = info.levels[2].cumulative_bytes - 7
    prefix = inspect(stream[:cut])
    assert prefix.pending.chunk == "LEVL 3"
    assert prefix.pending.offset == info.levels[1].cumulative_bytes
    assert prefix.pending.present_bytes == cut - info.levels[1].cumulative_bytes
    assert prefix.pending.chunk_bytes == info.levels[2].bytes
    assert f"stops inside chunk LEVL 3 ({prefix.pending.present_bytes:,} of " \
        f"{info.levels[2].bytes:,} bytes present" in format_info(prefix)
    assert prefix.to_dict()["pending"]["chunk"] == "LEVL 3"
    between = inspect(stream[: info.levels[1].cumulative_bytes + 3])
    assert between.pending.chunk is None and between.pending.present_bytes == 3



def test_inspect_and_decode_share_the_chunk_rules():
    """Both walk chunks with ChunkWalker: on every invalid stream of the conformance suite,
    inspect either accepts (the fault lies in structure or attributes, which it does not
    decode) or raises the very error decode raises."""
    import lzma
    from pathlib import Path

    from progs_codec import ProgsError

    suite = Path(__file__).resolve().parents[1] / "conformance" / "invalid"
    raised = 0
    for case in sorted(p for p in suite.iterdir() if p.is_dir()):
        expected = json.loads((case / "expected.json").read_text())
        data = (case / expected["stream"]).read_bytes()
        data = lzma.decompress(data) if expected["stream"].endswith(".xz") else data
        with pytest.raises(ProgsError) as decoded:
            decode(data, strict=True)
        try:
            inspect(data)
        except ProgsError as error:
            raised += 1
            assert (type(error), str(error)) == (type(decoded.value), str(decoded.value)), case
    assert raised > 30
