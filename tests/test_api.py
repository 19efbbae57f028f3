"""The public surface is small and pinned (STYLE 2)."""

import progs_codec


def test_all_is_pinned():
    assert sorted(progs_codec.__all__) == sorted([
        "encode", "decode", "Decoder", "inspect", "StreamInfo", "truncate", "ProgsModel",
        "Level", "SceneFrame", "AttributeDims", "GaussianMLPs", "Refinement", "MAGIC", "VERSION",
        "ProgsError",
        "FormatError", "ChecksumError", "TruncatedError", "UnsupportedError", "LimitError",
        "ModelError", "build_model", "LevelArrays", "BuildResult"])
    for name in progs_codec.__all__:
        assert hasattr(progs_codec, name), name


def test_magic_and_version_are_pinned():
    assert progs_codec.MAGIC == b"\x89PGS\r\n\x1a\n"
    assert progs_codec.VERSION == (1, 1)
    assert [m.name for m in progs_codec.Refinement] == ["ADD", "REPLACE"]
    assert [int(m) for m in progs_codec.Refinement] == [0, 1]


def test_error_hierarchy():
    for cls in (progs_codec.FormatError, progs_codec.ChecksumError, progs_codec.TruncatedError,
                progs_codec.UnsupportedError, progs_codec.LimitError, progs_codec.ModelError):
        assert issubclass(cls, progs_codec.ProgsError)
    assert issubclass(progs_codec.ModelError, ValueError)


def test_decode_path_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, progs_codec; from progs_codec.testing import synthetic_model; "
            "m = synthetic_model(300, 3, 0); progs_codec.decode(progs_codec.encode(m)); "
            "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
            "('torch', 'gsplat', 'plyfile', 'scipy')); print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_modules_export_what_they_list():
    """The trainer's modules (progs_codec.build.TRAINER_MODULES) hold every name they list."""
    import importlib

    from progs_codec.build import TRAINER_MODULES

    for name in TRAINER_MODULES:
        module = importlib.import_module(name)
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == [], (name, missing)
        assert not [n for n in module.__all__ if n.startswith("_")], name


def test_license_and_notice():
    """The Apache-2.0 text that pyproject.toml names, and the data credits beside it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    license_text = (root / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text and len(license_text) > 11000
    assert 'license = { text = "Apache-2.0" }' in (root / "pyproject.toml").read_text()
    notice = (root / "NOTICE").read_text()
    assert "Marcel Padilla" in notice and "CC-BY-4.0" in notice
    # shipped streams derived from donut (MIT) carry its copyright and licence text
    donut_license = (root / "benchmarks" / "streams" / "donut" / "LICENSE").read_text()
    assert "GSHairLoD" in notice and "Permission is hereby granted" in donut_license
