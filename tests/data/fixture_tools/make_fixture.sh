#!/usr/bin/env bash
# Regenerate a fixture tests/data/NAME with the REAL DeePMD-kit 3.2.0 (TF backend, tensorflow-cpu
# 2.21.0); build its venv with /work/shared/tools/deepmd-venv.sh.
#   usage: bash tests/data/fixture_tools/make_fixture.sh NAME [VENV]   (default VENV: /work/deepmd-venv)
# Trains in a scratch dir under /tmp (never in the repo), then writes into tests/data/NAME:
#   frozen_model.pb lcurve.out reference.npz graph_info.json [model.dp structure.json] check_log.txt
# input.json there is the source of truth: data paths starting with "dpkeras/" are relative to the
# repo root, paths starting with "scratch/" are made in the scratch dir (see make_param_data.py).
# Which frames reference.npz holds is chosen per NAME below (eval_reference.py --case ...).
set -euo pipefail
NAME=$1
TOOLS=$(cd "$(dirname "$0")" && pwd)
HERE=$(cd "$TOOLS/../$NAME" && pwd)
ROOT=$(cd "$TOOLS/../../.." && pwd)
VENV=${2:-/work/deepmd-venv}
PY="$VENV/bin/python"; DP="$VENV/bin/dp"
export OMP_NUM_THREADS=1 DP_INTRA_OP_PARALLELISM_THREADS=1 DP_INTER_OP_PARALLELISM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=3
WORK=$(mktemp -d "/tmp/${NAME}_XXXXXX")
D=$ROOT/dpkeras/examples/data
sed -e "s#\"dpkeras/#\"$ROOT/dpkeras/#" -e "s#\"scratch/#\"$WORK/scratch/#" "$HERE/input.json" > "$WORK/input.json"
case "$NAME" in
  water_ener_fparam)   # copies of water data_0 / data_3 with fparam.npy + aparam.npy (seeded)
    for s in data_0 data_3; do "$PY" "$TOOLS/make_param_data.py" "$D/water/$s" "$WORK/scratch/water_fparam/$s"; done
    CASES=(--case ":$WORK/scratch/water_fparam/data_3:4:pbc" --case "nopbc_:$WORK/scratch/water_fparam/data_3:2:nopbc" --desc-frames 1) ;;
  nopbc_*)             # two compositions, both without PBC: one unseen in training, one seen
    CASES=(--case "C4H3O1_:$D/nopbc/C4H3O1:3:nopbc" --case "C3H3O4_:$D/nopbc/C3H3O4:3:nopbc") ;;
  water_dipole)
    V=$D/water_tensor/dipole/validation_data_reformat/atomic_system
    CASES=(--case ":$V:3:pbc" --case "nopbc_:$V:2:nopbc" --desc-frames 1) ;;
  water_polar)
    V=$D/water_tensor/polar/validation_data_reformat/atomic_system
    CASES=(--case ":$V:2:pbc" --case "nopbc_:$V:1:nopbc" --deriv-frames 1 --desc-frames 1 --no-tensor-atom-virial) ;;
  water_se_e2_r|water_se_e3)  # as when these were made (descriptor of every frame)
    CASES=(--case ":$D/water/data_3:4:pbc" --case "nopbc_:$D/water/data_3:2:nopbc") ;;
  *)                   # water: 4 PBC frames + the same atoms without PBC (2 frames) of data_3;
    CASES=(--case ":$D/water/data_3:4:pbc" --case "nopbc_:$D/water/data_3:2:nopbc" --desc-frames 1) ;;
esac
cd "$WORK"
if ! "$DP" --tf train input.json > train.log 2>&1; then
  grep -v -e oneDNN -e cpu_feature -e absl train.log | tail -20; echo "dp --tf train FAILED ($WORK)"; exit 1
fi
"$DP" --tf freeze -o frozen_model.pb > freeze.log 2>&1
case "$NAME" in
  compressed_*)   # dp compress (stride 0.04 keeps the tables small); the fixture is the compressed graph
    mv frozen_model.pb uncompressed.pb
    "$DP" --tf compress -i uncompressed.pb -o frozen_model.pb -s 0.04 > compress.log 2>&1 || {
      grep -v -e oneDNN -e cpu_feature -e absl compress.log | tail -20; echo "dp --tf compress FAILED ($WORK)"; exit 1; } ;;
esac
FILTER=(grep -v -e implib -e libcudart -e DT_DOUBLE -e absl -e oneDNN -e cpu_feature -e 'To enable' -e MLIR -e DP_INFER_BATCH_SIZE -e 'To get the best')
{
  echo "DeePMD-kit $("$PY" -c 'import deepmd; print(deepmd.__version__)'), tensorflow $("$PY" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null)"
  grep -h -e "neighbor" -e "max_nbor_size" -e "min_nbor_dist" train.log | sed 's/^.*DEEPMD INFO *//' | head -8 || true
  # reference.npz and graph_info.json
  "$PY" "$TOOLS/eval_reference.py" frozen_model.pb - reference.npz graph_info.json "${CASES[@]}"
  cp frozen_model.pb lcurve.out reference.npz graph_info.json "$HERE/"
  # model.dp (dp convert-backend frozen_model.pb model.dp) + structure.json + round-trip checks
  # (not for mixed precision: DeePMD-kit's TF backend cannot serialize its float16 graph either)
  # (nor for compressed graphs: .dp holds networks, not tables)
  case "$NAME" in
    water_mixed_prec) ;;
    compressed_*)   # how far dp compress moved the outputs: the uncompressed graph on the same frames
      grep -h -e "boundary" compress.log | sed 's/^.*DEEPMD INFO *//' || true
      cp uncompressed.pb "$HERE/"
      # DeePMD-kit 3.2's kernel continues a table linearly beyond its range (2.2's held it constant)
      "$PY" "$TOOLS/eval_beyond.py" frozen_model.pb reference.npz reference_beyond.npz
      cp reference_beyond.npz "$HERE/"
      "$PY" "$TOOLS/eval_reference.py" uncompressed.pb - uncompressed.npz /dev/null "${CASES[@]}" > /dev/null
      "$PY" -c "import numpy as np
a, b = np.load('reference.npz'), np.load('uncompressed.npz')
for k in ('energy', 'force', 'virial', 'atom_virial', 'nopbc_force'):
    print(f'dp compress: max |compressed - uncompressed| {k}: {np.abs(a[k] - b[k]).max():.3e} (max |value| {np.abs(b[k]).max():.3e})')" ;;
    *) "$PY" "$TOOLS/make_dp.py" "$HERE" ;;
  esac
  if [ "$NAME" = water_se_e2_r ] || [ "$NAME" = water_se_e3 ]; then
    # independent numpy re-implementation of the README "Math" section vs reference.npz
    "$PY" "$TOOLS/check_math.py" "$HERE"
    WATER_DATA="$D/water" "$PY" "$TOOLS/check_stats.py" "$HERE"
  fi
} 2>&1 | "${FILTER[@]}" | tee "$HERE/check_log.txt"
echo "scratch dir (train.log, checkpoints): $WORK"
