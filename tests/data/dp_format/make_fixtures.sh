#!/usr/bin/env bash
# Regenerate the .dp fixtures in this directory with the real DeePMD-kit 3.2.0 (TF 2.21.0).
#   usage: bash tests/data/dp_format/make_fixtures.sh [VENV]   (default VENV: /work/deepmd-venv)
# The venv is built by /work/shared/tools/deepmd-venv.sh (never a dependency of dpkeras).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-/work/deepmd-venv}
[ -x "$VENV/bin/dp" ] || bash /work/shared/tools/deepmd-venv.sh "$VENV"
export OMP_NUM_THREADS=1 DP_INTRA_OP_PARALLELISM_THREADS=1 DP_INTER_OP_PARALLELISM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=3
# The core command behind water_se_e2_a.dp is simply:
#   "$VENV/bin/dp" convert-backend /work/shared/fixtures/water_se_e2_a/frozen_model.pb water_se_e2_a.dp
# make_fixtures.py runs it, writes structure.json, the tiny model + reference, and all checks.
"$VENV/bin/python" "$HERE/make_fixtures.py" 2>&1 \
  | grep -v -e implib -e libcudart -e DT_DOUBLE -e 'DEEPMD WARNING' -e absl -e oneDNN \
            -e cpu_feature -e 'To enable' -e MLIR -e DP_INFER_BATCH_SIZE \
  | tee "$HERE/check_log.txt"
