#!/usr/bin/env bash
# The whole GPU run from a bare GPU machine (Python 3.12, torch with CUDA and nvcc, no
# internet), in at most 9 minutes including gsplat's first compile. Run from anywhere:
#
#   training/gpu_run.sh OUT_DIR              # on the GPU machine
#   training/gpu_run.sh OUT_DIR --rehearse   # the same stages on the CPU at tiny sizes
#
# It installs the wheels carried in .whl/ (training/prepare_gpu_carry.py fetches exactly the
# ones the run needs) into a private folder, finds the carried data in .carry/data (or
# PROGS_DATA, or ../shared/data), and runs python -m progs_training.gpu_run, which writes
# OUT_DIR/results.json and OUT_DIR/results.md after every stage (a run cut off still
# reports) and OUT_DIR/log.txt as it goes. Exit status: 0 if every stage passed.
set -uo pipefail
OUT_DIR=${1:?usage: training/gpu_run.sh OUT_DIR [--rehearse] [gpu_run options]}
shift
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

SITE=""
if compgen -G "$REPO/.whl/*.whl" > /dev/null && [[ " $* " != *" --rehearse "* ]]; then
  # --no-deps: everything else the run imports is on the machine's image; one version each
  SITE=$(mktemp -d /tmp/progs-site.XXXXXX)
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$SITE" "$REPO"/.whl/*.whl 2>&1 | tee -a "$OUT_DIR/log.txt"; then
    echo "gpu_run.sh: wheel install failed; the environment stage will say what is missing" \
      | tee -a "$OUT_DIR/log.txt"
  fi
fi
export PYTHONPATH="$REPO:$REPO/training${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
export MAX_JOBS=${MAX_JOBS:-16}
cd "$REPO"
"$PY" -m progs_training.gpu_run "$OUT_DIR" "$@" 2>&1 | tee -a "$OUT_DIR/log.txt"
exit "${PIPESTATUS[0]}"
