"""Where a run executes: the torch device chosen from ``--device``, and its description for
reports (both training routes)."""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["pick_device", "machine_description"]


def pick_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def machine_description(device) -> str:
    """``"NVIDIA H100 80GB HBM3"`` or ``"CPU, 2 cores (x86_64)"``."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(0)
    return f"CPU, {os.cpu_count()} cores ({platform.machine()})"
