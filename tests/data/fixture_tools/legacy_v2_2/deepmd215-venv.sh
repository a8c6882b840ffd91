#!/usr/bin/env bash
# Side venv with DeePMD-kit 2.1.5 (TensorFlow 2.10.0, Python 3.10) for the *_v2.1.5 legacy fixtures.
# Never a dependency of dpkeras.   usage: deepmd215-venv.sh [DIR]   (default ~/.cache/dpkeras-deepmd215-venv)
# Measured (2 cores): Python 3.11 cannot host 2.1.x/2.0.x: PyPI has no cp311 wheel for them
#   ("No matching distribution found for deepmd-kit[cpu]==2.1.5" with --only-binary), and the sdist's
#   C++ ops fail to compile against every TF that has cp311 wheels (>= 2.12):
#   "source/op/optimizer/parallel.h:13:20: error: 'OK' is not a member of 'tsl::Status'".
# The cp310 wheel on PyPI was built against TF 2.10.0 (its deepmd/pkg_config: TF_VERSION = 2.10.0), so
# it needs exactly tensorflow-cpu 2.10.0 and the numpy/protobuf of that era; installs in ~30 s.
set -euo pipefail
DIR=${1:-$HOME/.cache/dpkeras-deepmd215-venv}
PY310=${PYTHON310:-python3.10}
if ! "$PY310" -c pass 2>/dev/null; then  # pyenv shims exist but may be inactive
  PY310=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python 2>/dev/null | tail -1)
fi
if [ -x "$DIR/bin/dp" ]; then echo "$DIR already has DeePMD-kit: $("$DIR/bin/pip" show deepmd-kit | sed -n 's/^Version: //p')"; exit 0; fi
"$PY310" -m venv "$DIR"
"$DIR/bin/pip" install -q --only-binary=deepmd-kit "deepmd-kit==2.1.5" "tensorflow-cpu==2.10.0" "numpy<1.24" "protobuf<3.20"
"$DIR/bin/dp" --version 2>/dev/null | tail -1
