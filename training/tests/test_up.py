"""Which way is up: the trainer stores the scene's up as the stream's axis convention (spec
3.1, 9.2), from the cameras (images route, ``--eval-views``) or ``--up`` (distillation)."""

from __future__ import annotations

import numpy as np
import pytest

from progs_codec import decode
from progs_codec.build import CoordinateConvention
from progs_codec.render import (Camera, Splats, load_nerf_cameras, look_at, read_splats,
                                write_splats)
from progs_training import cli
from progs_training.data import DataError, _convention, nerf_convention


@pytest.mark.parametrize("scene, convention", [("donut", CoordinateConvention.ZUP),
                                               ("plant", CoordinateConvention.OPENCV)])
def test_teacher_views_cameras_give_their_up(data_dir, scene, convention):
    """donut's cameras' mean up is (0, 0.013, 0.838): world +z (it was taken for +y, OpenGL,
    and shown edge-on); plant's is (0, -0.838, 0): -y."""
    folder = data_dir / "teacher_views" / scene
    cameras = [c for _, c in load_nerf_cameras(folder / "transforms_train.json", width=8,
                                               height=8)]
    assert _convention(cameras) == convention
    assert nerf_convention(folder) == convention


def test_closest_up_wins():
    def camera(up):
        return Camera(8, 8, 8.0, 8.0, 4.0, 4.0, look_at(np.array([3.0, 2.0, 1.0]), np.zeros(3), up))

    for up, convention in (((0, -1, 0), CoordinateConvention.OPENCV),
                           ((0, 1, 0.2), CoordinateConvention.OPENGL),
                           ((0.3, 0.2, 1), CoordinateConvention.ZUP)):
        assert _convention([camera(np.array(up, float))]) == convention


def test_nerf_convention_needs_a_transforms_file(tmp_path):
    with pytest.raises(DataError, match="no transforms_train.json"):
        nerf_convention(tmp_path)


@pytest.fixture(scope="module")
def small_teacher(data_dir, tmp_path_factory):
    s = read_splats(data_dir / "scenes" / "plant" / "plant.ply")
    centre = np.median(s.means, axis=0)
    keep = (np.abs(s.means - centre) < 0.04).all(axis=1)
    path = tmp_path_factory.mktemp("up") / "teacher.ply"
    write_splats(path, Splats(s.means[keep], s.scales[keep], s.quats[keep], s.opacities[keep],
                              s.sh[keep]))
    return path


def test_distill_up_chooses_the_convention(small_teacher, tmp_path, monkeypatch, data_dir):
    """``--up`` sets DistillConfig.convention; by default it comes from the --eval-views
    cameras, else -y (OpenCV). Checked on the config the CLI builds."""
    seen = []

    def fake_run_distill(data, out, config, **kwargs):
        seen.append(config.convention)
        return {"lods": [], "stream_bytes": 0, "eval_views": kwargs.get("eval_views")}

    monkeypatch.setattr(cli, "run_distill", fake_run_distill)
    base = ["--data", str(small_teacher), "--out", str(tmp_path / "x.progs"), "--quiet"]
    donut = str(data_dir / "teacher_views" / "donut")
    for extra, convention in (([], CoordinateConvention.OPENCV),
                              (["--eval-views", donut], CoordinateConvention.ZUP),
                              (["--eval-views", donut, "--up", "-y"], CoordinateConvention.OPENCV),
                              (["--up", "+y"], CoordinateConvention.OPENGL),
                              (["--up=+z"], CoordinateConvention.ZUP)):
        assert cli.main(base + extra) == 0
        assert seen[-1] == convention, extra


def test_up_is_for_the_distillation_route(data_dir, tmp_path, capsys):
    """The images route takes up from its cameras; -z is no convention (argparse's choices)."""
    with pytest.raises(SystemExit) as info:
        cli.main(["--data", str(data_dir / "images" / "lego_200"), "--out",
                  str(tmp_path / "x.progs"), "--up", "+z"])
    assert info.value.code == 2 and "--up is for the distillation route" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--data", "x.ply", "--out", str(tmp_path / "x.progs"), "--up", "-z"])


def test_distilled_zup_stream_is_version_1_1(small_teacher, tmp_path):
    """A Z-up distillation writes convention 2 in a 1.1 stream that decodes as such."""
    out = tmp_path / "zup.progs"
    assert cli.main(["--data", str(small_teacher), "--out", str(out), "--iters", "5",
                     "--levels", "2", "--up", "+z", "--quiet"]) == 0
    stream = out.read_bytes()
    assert stream[8:10] == bytes([1, 1])
    assert decode(stream).frame.convention == CoordinateConvention.ZUP
