"""Distillation: an existing 3DGS scene -> a progressive ``.progs`` stream, fitted in 3D.

The route of ``progs-train`` for trained scenes (``.ply``, ``.splat``, ``.spz``). Modules, in
pipeline order: :mod:`.teacher` (read and check), :mod:`.sizes` (dimensions and octree depth
from the scene and the rate weight), :mod:`.targets` (every level's slot targets, merged by
moment matching), :mod:`.model` (anchors, generation MLPs, hash grid and context model),
:mod:`.loss` (distortion in units of image MSE), :mod:`.fit` (rate-distortion fit with noise,
then rounding), :mod:`.pipeline` (end to end, export through :func:`progs_codec.build.build_model`).
"""

from .fit import FitResult, FitSchedule, fit
from .model import DistillModel, ModelSizes
from .pipeline import DistillConfig, DistillResult, distill, export_model
from .targets import LevelTargets, choose_frame, level_targets
from .teacher import Teacher, TeacherError, check_teacher, read_teacher

__all__ = ["distill", "DistillConfig", "DistillResult", "export_model", "ModelSizes",
           "DistillModel", "FitSchedule", "FitResult", "fit", "LevelTargets", "level_targets",
           "choose_frame", "Teacher", "TeacherError", "read_teacher", "check_teacher"]
