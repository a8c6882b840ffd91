#!/usr/bin/env bash
# Regenerate a descriptor fixture (tests/data/NAME, e.g. water_se_e2_r or water_se_e3) with the REAL
# DeePMD-kit 3.2.0 (TF backend, tensorflow-cpu 2.21.0); build its venv with deepmd-venv.sh.
#   usage: bash tests/data/fixture_tools/make_fixture.sh NAME [VENV]   (default VENV: /work/deepmd-venv)
# Trains in a scratch dir under /tmp (never in the repo), then writes into tests/data/NAME:
#   frozen_model.pb lcurve.out reference.npz graph_info.json model.dp structure.json check_log.txt
# input.json here is the source of truth (its data paths are relative to the repo root).
set -euo pipefail
TOOLS=$(cd "$(dirname "$0")" && pwd)
HERE=$(cd "$TOOLS/../$1" && pwd)
ROOT=$(cd "$TOOLS/../../.." && pwd)
VENV=${2:-/work/deepmd-venv}
PY="$VENV/bin/python"; DP="$VENV/bin/dp"
export OMP_NUM_THREADS=1 DP_INTRA_OP_PARALLELISM_THREADS=1 DP_INTER_OP_PARALLELISM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=3
WORK=$(mktemp -d "/tmp/$1_XXXXXX")
sed "s#\"dpkeras/examples/data/water/#\"$ROOT/dpkeras/examples/data/water/#" "$HERE/input.json" > "$WORK/input.json"
cd "$WORK"
"$DP" --tf train input.json > train.log 2>&1
"$DP" --tf freeze -o frozen_model.pb > freeze.log 2>&1
FILTER=(grep -v -e implib -e libcudart -e DT_DOUBLE -e absl -e oneDNN -e cpu_feature -e 'To enable' -e MLIR -e DP_INFER_BATCH_SIZE -e 'To get the best')
{
  # reference.npz (4 PBC frames + 2 non-PBC frames of water/data_3) and graph_info.json
  "$PY" "$TOOLS/eval_reference.py" frozen_model.pb "$ROOT/dpkeras/examples/data/water/data_3" reference.npz graph_info.json
  cp frozen_model.pb lcurve.out reference.npz graph_info.json "$HERE/"
  # model.dp (dp convert-backend frozen_model.pb model.dp) + structure.json + round-trip checks
  "$PY" "$TOOLS/make_dp.py" "$HERE"
  # independent numpy re-implementation of the README "Math" section vs reference.npz
  "$PY" "$TOOLS/check_math.py" "$HERE"
  WATER_DATA="$ROOT/dpkeras/examples/data/water" "$PY" "$TOOLS/check_stats.py" "$HERE"
} 2>&1 | "${FILTER[@]}" | tee "$HERE/check_log.txt"
echo "scratch dir (train.log, checkpoints): $WORK"
