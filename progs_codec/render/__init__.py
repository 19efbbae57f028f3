"""The pixel side (spec 9, informative): Gaussians from anchors, cameras, rendering, baking.

Nothing here imports torch at module level; the gsplat backend and the torch twin of the
generation step import it when called. Modules: ``gaussians`` (spec 9.1), ``camera``
(spec 9.2), ``rasterize_cpu`` and ``images`` (spec 9.3), ``bake`` (spec 9.4), ``splats``
(spec 9.5). The names below are the public surface of this layer.

>>> from progs_codec.render import orbit_cameras
>>> len(orbit_cameras((0, 0, 0), 3.0, 4, width=32, height=32))
4
"""

from .bake import bake, export_splats
from .camera import (Camera, CameraError, framing_distance, load_nerf_cameras, look_at,
                     orbit_cameras, scene_sphere)
from .gaussians import NeuralGaussians, generate_gaussians, generate_gaussians_torch, mlp_to_torch
from .images import RenderError, RenderResult, attach_up_value, psnr, render, render_orbit, ssim
from .rasterize_cpu import rasterize
from .splats import (SH_C0, Splats, SplatsError, read_ply, read_splats, sh_basis, write_ply,
                     write_splats)

__all__ = [
    "render", "render_orbit", "psnr", "ssim", "RenderResult", "RenderError", "attach_up_value",
    "Camera", "CameraError", "look_at", "orbit_cameras", "scene_sphere", "framing_distance",
    "load_nerf_cameras",
    "NeuralGaussians", "generate_gaussians", "generate_gaussians_torch", "mlp_to_torch",
    "rasterize",
    "bake", "export_splats",
    "Splats", "SplatsError", "read_splats", "write_splats", "read_ply", "write_ply",
    "sh_basis", "SH_C0",
]
