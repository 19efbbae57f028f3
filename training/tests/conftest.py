"""Shared fixtures: the real data folder (tests skip without it) and a tiny teacher scene."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# One intra-op thread: on a small shared CPU, OpenMP threads that spin-wait for each other
# made training steps up to 8x slower than a single thread (measured on 2 busy cores).
torch.set_num_threads(1)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.exists():
        pytest.skip(f"real test data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def plant_tiny(data_dir):
    """Plant teacher views at 32x32 with the teacher's centres as initial points."""
    from progs_training.data import load_scene

    return load_scene(data_dir / "teacher_views" / "plant", size=32,
                      init_points=data_dir / "scenes" / "plant" / "plant.splat")
