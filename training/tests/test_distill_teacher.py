"""Bad teachers get a TeacherError naming the file and the problem; good ones load."""

from __future__ import annotations

import numpy as np
import pytest

from progs_codec import ProgsError
from progs_codec.render import Splats, write_ply, write_splats
from progs_training.distill.teacher import (Teacher, TeacherError, check_teacher,
                                            count_gaussians, read_teacher)


def _splats(n=5, seed=0, degree=0):
    rng = np.random.default_rng(seed)
    return Splats(rng.normal(size=(n, 3)), rng.uniform(0.01, 0.1, (n, 3)),
                  rng.normal(size=(n, 4)), rng.uniform(0.1, 0.9, n),
                  rng.normal(0, 0.3, (n, (degree + 1) ** 2, 3)))


def test_real_teacher_loads_with_unit_quaternions(data_dir):
    t = read_teacher(data_dir / "scenes" / "donut" / "donut.ply")
    assert isinstance(t, Teacher) and len(t) == 45624 and t.sh_degree == 0
    assert np.allclose(np.linalg.norm(t.quats, axis=1), 1)
    assert count_gaussians(data_dir / "scenes" / "plant" / "plant.splat") == 113648


@pytest.mark.parametrize("suffix", [".ply", ".splat", ".spz"])
def test_every_format_round_trips(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    write_splats(path, _splats(7))
    assert len(read_teacher(path)) == 7 and count_gaussians(path) == 7


def test_sh_degree_3_is_kept(tmp_path):
    write_ply(tmp_path / "s.ply", _splats(4, degree=3))
    assert read_teacher(tmp_path / "s.ply").sh_degree == 3


@pytest.mark.parametrize("field, value, message", [
    ("means", np.nan, "non-finite means"),
    ("scales", 0.0, "scale <= 0"),
    ("scales", -1.0, "scale <= 0"),
    ("quats", 0.0, "zero quaternion"),
    ("opacities", 1.5, "opacities outside"),
    ("sh", np.inf, "non-finite sh"),
])
def test_bad_values_are_named(field, value, message):
    s = _splats(5)
    arrays = {k: np.array(getattr(s, k), np.float64) for k in
              ("means", "scales", "quats", "opacities", "sh")}
    arrays[field][2] = value
    with pytest.raises(TeacherError, match=message) as info:
        check_teacher(**arrays, path="x.ply")
    assert "#2" in str(info.value) and "x.ply" in str(info.value)


def test_empty_scene(tmp_path):
    path = tmp_path / "empty.splat"
    path.write_bytes(b"")
    with pytest.raises(TeacherError, match="no Gaussians"):
        read_teacher(path)


def test_splat_of_wrong_size(tmp_path):
    path = tmp_path / "cut.splat"
    path.write_bytes(bytes(40))
    with pytest.raises(TeacherError, match="32-byte"):
        read_teacher(path)


def test_too_large_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.ply"
    # a header declaring 10**9 vertices and no data: refused from the header alone
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1000000000\n"
                     b"property float x\nend_header\n")
    with pytest.raises(TeacherError, match="more than the limit"):
        read_teacher(path)


def test_ply_that_is_not_3dgs(tmp_path):
    path = tmp_path / "points.ply"
    path.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                     b"property float y\nproperty float z\nend_header\n0 0 0\n")
    with pytest.raises(TeacherError, match="missing required PLY property"):
        read_teacher(path)


def test_ply_without_vertices(tmp_path):
    path = tmp_path / "faces.ply"
    path.write_bytes(b"ply\nformat ascii 1.0\nelement face 0\nend_header\n")
    with pytest.raises(TeacherError, match="no 'vertex' element"):
        read_teacher(path)


def test_sh_degree_above_3(tmp_path):
    header = ["ply", "format ascii 1.0", "element vertex 1"]
    props = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(72)] \
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    header += [f"property float {p}" for p in props] + ["end_header"]
    path = tmp_path / "deg5.ply"
    path.write_text("\n".join(header) + "\n" + " ".join(["0.5"] * len(props)) + "\n")
    with pytest.raises(TeacherError, match="SH degree"):
        read_teacher(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(TeacherError, match="no such file"):
        read_teacher(tmp_path / "nothing.ply")
    (tmp_path / "scene.obj").write_text("v 0 0 0\n")
    with pytest.raises(TeacherError, match="unknown 3DGS format") as info:
        read_teacher(tmp_path / "scene.obj")
    assert isinstance(info.value, ProgsError)
