#!/usr/bin/env bash
# Regenerate every fixture under tests/data/legacy_v2_2/ with the REAL DeePMD-kit 2.2.11 (TensorFlow
# 2.16.2, Python 3.11; venv built by /work/shared/tools/deepmd22-venv.sh, never a dpkeras dependency).
#   usage: bash tests/data/fixture_tools/legacy_v2_2/make_all.sh [VENV]
#          (default VENV: /root/.cache/dpkeras-deepmd22-venv; scratch dir: $LEGACY22_WORK or /tmp/legacy22/work;
#           the *_v2.1.5 dirs need $OLD_VENV, default /root/.cache/dpkeras-deepmd215-venv, made by
#           tests/data/fixture_tools/legacy_v2_2/deepmd215-venv.sh)
# ~8-9 min on 2 cores (measured 7.5 and 9.1). Trains in the scratch dir (never in the repo) and copies only the final artifacts.
# Order matters: finetune_se_atten needs water_se_atten's graph, compressed_* need water_se_e2_a/_r's.
set -euo pipefail
TOOLS=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$TOOLS/../../../.." && pwd)
OUT=$ROOT/tests/data/legacy_v2_2
VENV=${1:-/root/.cache/dpkeras-deepmd22-venv}
PY="$VENV/bin/python"; DP="$VENV/bin/dp"
WORK=${LEGACY22_WORK:-/tmp/legacy22/work}
D=$ROOT/dpkeras/examples/data          # verbatim copy of /work/shared/data (see its README.md)
export OMP_NUM_THREADS=1 TF_INTRA_OP_PARALLELISM_THREADS=1 TF_INTER_OP_PARALLELISM_THREADS=1
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0
rm -rf "$WORK"; mkdir -p "$WORK" "$OUT"

quiet() {  # drop TensorFlow deprecation chatter from a log
  grep -v -e oneDNN -e cpu_feature -e absl -e 'WARNING:tensorflow' -e 'Instructions for updating' \
    -e 'tensorflow.org' -e 'non-resource variables' -e 'list_physical_devices' -e DP_INFER_BATCH_SIZE \
    -e '^ *$' -e 'deprecated' -e 'tf.py_function\|tf.numpy_function\|tensor.numpy()\|eager tensors\|accelerators such\|being differentiable\|it is not differentiable\|stateful argument\|options available in V2\|tensorflow.python' || true
}
run() {  # run a command in the current dir, log to $1, show the tail and stop on failure
  local log=$1; shift
  if ! "$@" > "$log" 2>&1; then quiet < "$log" | tail -25; echo "FAILED: $* (in $PWD)"; exit 1; fi
}
absinput() {  # repo-relative data paths of an input.json -> absolute
  sed -e "s#\"dpkeras/#\"$ROOT/dpkeras/#" -e "s#\"scratch/#\"$WORK/scratch/#" "$1" > "$2"
}
evaluate() {  # PB SYSTEM REF REF_NOPBC GRAPH_INFO [eval22 size options]  (appends to ./check_log.txt)
  { "$PY" "$TOOLS/eval22.py" "$1" "$2" 2 "$3" --nopbc "$4" "${@:6}" 2>&1 | quiet
    "$PY" "$TOOLS/graph_info22.py" "$1" "$5" 2>&1 | quiet; } | tee -a check_log.txt
}
train_freeze() {  # NAME [extra dp train args]: train + freeze in $WORK/NAME
  local name=$1; shift
  mkdir -p "$WORK/$name"; cd "$WORK/$name"
  absinput "$OUT/$name/input.json" input.json
  echo "DeePMD-kit $("$PY" -c 'import deepmd; print(deepmd.__version__)' 2>/dev/null), tensorflow $("$PY" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null)" > check_log.txt
  run train.log "$DP" train input.json "$@"
  quiet < train.log | grep -e "neighbor\|nbor\|bias\|sel\b" | sed 's/^.*DEEPMD INFO *//' | head -10 >> check_log.txt || true
  run freeze.log "$DP" freeze -o frozen_model.pb
}

echo "== inputs and data"
"$PY" "$TOOLS/make_inputs.py" "$OUT"
for kind in dipole polar; do
  for split in training validation; do
    "$PY" "$TOOLS/make_tensor_data.py" "$D/water_tensor/$kind/${split}_data_reformat/atomic_system" \
      "$WORK/scratch/water_tensor/$kind/${split}_atomic_sel0" 0
  done
done

WATER3=$D/water/data_3
DIPV=$D/water_tensor/dipole/validation_data_reformat/atomic_system
POLV=$D/water_tensor/polar/validation_data_reformat/atomic_system
for name in water_se_e2_a water_se_e2_r water_se_e3 water_se_atten water_hybrid water_dipole water_polar; do
  echo "== $name"
  train_freeze "$name"
  OPTS=(); case $name in water_dipole) SYS=$DIPV ;; water_polar) SYS=$POLV; OPTS=(--lite-nopbc) ;; *) SYS=$WATER3 ;; esac
  evaluate frozen_model.pb "$SYS" reference.npz reference_nopbc.npz graph_info.json "${OPTS[@]}"
  cp frozen_model.pb lcurve.out reference.npz reference_nopbc.npz graph_info.json check_log.txt "$OUT/$name/"
done

echo "== finetune_se_atten (0 steps on water data_1 from water_se_atten's graph)"
mkdir -p "$WORK/finetune_se_atten"; cd "$WORK/finetune_se_atten"
cp "$OUT/water_se_atten/frozen_model.pb" pretrained.pb
absinput "$OUT/finetune_se_atten/input.json" input.json
echo "DeePMD-kit $("$PY" -c 'import deepmd; print(deepmd.__version__)' 2>/dev/null)" > check_log.txt
run train.log "$DP" train input.json --finetune pretrained.pb
quiet < train.log | sed 's/^.*DEEPMD INFO *//' > finetune.log
grep -i -e "bias" -e "finetune" -e "pretrained" finetune.log >> check_log.txt || true
run freeze.log "$DP" freeze -o frozen_model.pb
evaluate frozen_model.pb "$WATER3" reference.npz reference_nopbc.npz graph_info.json
cp frozen_model.pb reference.npz reference_nopbc.npz graph_info.json finetune.log check_log.txt "$OUT/finetune_se_atten/"

echo "== multitask (water_a, water_b: ener with shared layers; water_dipole: dipole)"
mkdir -p "$WORK/multitask"; cd "$WORK/multitask"
absinput "$OUT/multitask/input.json" input.json
echo "DeePMD-kit $("$PY" -c 'import deepmd; print(deepmd.__version__)' 2>/dev/null)" > check_log.txt
run train.log "$DP" train input.json --skip-neighbor-stat
run freeze.log "$DP" freeze -o frozen_model.pb                    # -> frozen_model_<head>.pb
run freeze_united.log "$DP" freeze --united-model -o united.pb
for head in water_a water_b water_dipole; do   # size options: this dir holds 4 graphs
  case $head in
    water_a) SYS=$WATER3; OPTS=(--lite-nopbc --desc-frames 1) ;;
    water_b) SYS=$WATER3; OPTS=(--lite-nopbc --no-descriptor) ;;   # same descriptor as water_a (checked below)
    water_dipole) SYS=$DIPV; OPTS=(--no-tensor-atom-virial) ;;
  esac
  evaluate "frozen_model_$head.pb" "$SYS" "reference_$head.npz" "reference_nopbc_$head.npz" "graph_info_$head.json" "${OPTS[@]}"
done
"$PY" -c "import numpy as np
from deepmd.infer import DeepPot
a, b = (np.load(f'reference_{h}.npz') for h in ('water_a', 'water_b'))
db = DeepPot('frozen_model_water_b.pb').eval_descriptor(a['coord'][:1], a['box'][:1], a['atype'])
print('shared descriptor: max|desc(water_a) - desc(water_b)| (frame 0)', np.abs(a['descriptor'] - db).max())
print('water_a vs water_b energy', a['energy'].ravel(), b['energy'].ravel())" 2>&1 | quiet | tee -a check_log.txt
"$PY" "$TOOLS/graph_info22.py" united.pb graph_info_united.json 2>&1 | quiet | tee -a check_log.txt
"$PY" "$TOOLS/check_united.py" united.pb water_a=frozen_model_water_a.pb water_b=frozen_model_water_b.pb \
  water_dipole=frozen_model_water_dipole.pb 2>&1 | quiet | tee -a check_log.txt
{ echo "DeepPotential(united.pb):"
  { "$PY" -c 'from deepmd.infer import DeepPotential; dp = DeepPotential("united.pb"); print(type(dp).__name__)' 2>&1 || true; } | quiet | tail -1; } | tee -a check_log.txt
cp frozen_model_water_a.pb frozen_model_water_b.pb frozen_model_water_dipole.pb united.pb lcurve.out \
   reference_water_*.npz reference_nopbc_water_*.npz graph_info_*.json check_log.txt "$OUT/multitask/"

# dp compress: default stride 0.01 gives 3.4 MB graphs here (4 tables of 940-1220 rows x 96); stride
# 0.04 (second table stride 10x = 0.4, extrapolate 5 = default) keeps them under 1 MB.
STRIDE=0.04
for src in se_e2_a se_e2_r; do
  name=compressed_$src
  echo "== $name (dp compress -s $STRIDE)"
  mkdir -p "$WORK/$name"; cd "$WORK/$name"
  cp "$WORK/water_$src/frozen_model.pb" model.pb     # its training script points at $WORK's absolute paths
  echo "DeePMD-kit $("$PY" -c 'import deepmd; print(deepmd.__version__)' 2>/dev/null)" > check_log.txt
  run compress.log "$DP" compress -i model.pb -o frozen_model.pb -s $STRIDE
  quiet < compress.log | grep -e "boundary" | sed 's/^.*DEEPMD INFO *//' >> check_log.txt || true
  evaluate frozen_model.pb "$WATER3" reference.npz reference_nopbc.npz graph_info.json --lite-nopbc
  "$PY" -c "import numpy as np, sys
for f in ('reference.npz', 'reference_nopbc.npz'):
    a, b = np.load(f), np.load(sys.argv[1] + '/' + f)
    print(f'{f}: compressed - uncompressed max|d|: energy', np.abs(a['energy'] - b['energy']).max(),
          'atom_energy', np.abs(a['atom_energy'] - b['atom_energy']).max(),
          'force', np.abs(a['force'] - b['force']).max(), 'virial', np.abs(a['virial'] - b['virial']).max())
" "$OUT/water_$src" | tee -a check_log.txt
  cp frozen_model.pb reference.npz reference_nopbc.npz graph_info.json check_log.txt "$OUT/$name/"
done

# DeePMD-kit 2.1.5 (Python 3.10 + TF 2.10.0; build its venv with deepmd215-venv.sh): se_e2_a and se_atten,
# the same inputs as the 2.2.11 water_se_e2_a / water_se_atten. eval22.py runs unchanged on 2.1.5.
OLD=${OLD_VENV:-/root/.cache/dpkeras-deepmd215-venv}
if [ -x "$OLD/bin/dp" ]; then
  for src in water_se_e2_a water_se_atten; do
    name=${src}_v2.1.5
    echo "== $name"
    mkdir -p "$OUT/$name" "$WORK/$name"; cd "$WORK/$name"
    cp "$OUT/$src/input.json" "$OUT/$name/input.json"
    absinput "$OUT/$name/input.json" input.json
    echo "DeePMD-kit $("$OLD/bin/python" -c 'import deepmd; print(deepmd.__version__)' 2>/dev/null), tensorflow $("$OLD/bin/python" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null)" > check_log.txt
    run train.log "$OLD/bin/dp" train input.json
    run freeze.log "$OLD/bin/dp" freeze -o frozen_model.pb
    { "$OLD/bin/python" "$TOOLS/eval22.py" frozen_model.pb "$WATER3" 2 reference.npz --nopbc reference_nopbc.npz 2>&1 | quiet
      "$PY" "$TOOLS/graph_info22.py" frozen_model.pb graph_info.json 2>&1 | quiet; } | tee -a check_log.txt
    cp frozen_model.pb lcurve.out reference.npz reference_nopbc.npz graph_info.json check_log.txt "$OUT/$name/"
  done
else
  echo "== no DeePMD-kit 2.1.5 venv at $OLD: *_v2.1.5 fixtures not remade (see deepmd215-venv.sh)"
fi

echo "== README.md files (numbers read from the artifacts)"
"$PY" "$TOOLS/write_readmes.py"

echo "== sizes"
du -sh "$OUT"/*/ | sed "s#$OUT/##"
echo "scratch dir (train logs, checkpoints): $WORK"
