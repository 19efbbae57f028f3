#!/usr/bin/env bash
# Whole GPU run from a bare H100 machine (Python 3.12, torch + CUDA preinstalled, no internet):
# install the wheels carried in .whl/, compile gsplat once, train plant (teacher) and lego,
# evaluate per LoD on held-out views, write results JSON/markdown and the .progs files.
#
# Usage: training/gpu_run.sh OUT_DIR        (run from the repository root)
# Budget: about 8 minutes of H100 time in all (see training/README.md).
set -euo pipefail
OUT_DIR=${1:?usage: training/gpu_run.sh OUT_DIR}
mkdir -p "$OUT_DIR"
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
DATA=${DATA:-$REPO/../shared/data}
PLANT_ITERS=${PLANT_ITERS:-6000}
LEGO_ITERS=${LEGO_ITERS:-5000}
# Coarser LoDs rendered per step besides the full one (0: all four, the default since the
# coarse-LoD fix; 1: one drawn at random, as before). All four add 4 small renders per step,
# not yet timed on the H100: if the run overruns its budget, set COARSE_LODS=1 or fewer ITERS.
COARSE_LODS=${COARSE_LODS:-0}

# 1. Offline install: only wheels from .whl/, never the network; torch stays as installed.
python -m pip install --no-index --find-links .whl --no-deps -q \
  gsplat jaxtyping wadler-lindig constriction bitarray plyfile pycolmap tqdm gsply numba \
  llvmlite rich markdown-it-py mdurl pygments ninja pillow numpy
python -m pip install --no-index --no-deps --no-build-isolation -q -e . 2>/dev/null \
  || export PYTHONPATH="$REPO:$REPO/training${PYTHONPATH:+:$PYTHONPATH}"

# 2. gsplat compiles its CUDA kernels at first use (~60 s on the H100).
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0
python - <<'EOF'
import time, torch, gsplat
t = time.time()
m = torch.zeros(1, 3, device="cuda"); m[0, 2] = 2
q = torch.tensor([[1.0, 0, 0, 0]], device="cuda")
gsplat.rasterization(m, q, torch.full((1, 3), 0.1, device="cuda"), torch.ones(1, device="cuda"),
                     torch.ones(1, 3, device="cuda"), torch.eye(4, device="cuda")[None],
                     torch.tensor([[[50.0, 0, 32], [0, 50, 32], [0, 0, 1]]], device="cuda"), 64, 64)
torch.cuda.synchronize()
print(f"gsplat ready in {time.time() - t:.0f} s on {torch.cuda.get_device_name(0)}")
EOF

# 3. Train and evaluate (each run writes its .progs and a JSON report).
python -m progs_training.cli --data "$DATA/teacher_views/plant" \
  --init-points "$DATA/scenes/plant/plant.splat" --out "$OUT_DIR/plant.progs" \
  --iters "$PLANT_ITERS" --levels 5 --target-anchors 20000 --lambda 0.004 \
  --coarse-lods "$COARSE_LODS" \
  --log "$OUT_DIR/plant.json" --quiet
python -m progs_training.cli --data "$DATA/images/lego_200" --out "$OUT_DIR/lego.progs" \
  --iters "$LEGO_ITERS" --levels 5 --target-anchors 15000 --lambda 0.004 \
  --coarse-lods "$COARSE_LODS" \
  --log "$OUT_DIR/lego.json" --quiet

# 4. Summary: machine, per-LoD quality and size, times, rate gap; plant vs its SPZ size.
python -m progs_training.report "$OUT_DIR" --spz-reference 1620000
