"""``python -m dpkeras.ipi water.json``: DeePMD-kit's i-PI example (examples/water/ipi, run
shortened to 20 steps) against the real i-PI server of the ``ipi`` package, on a unix socket.
Data: ``tests/data/deepmd_ipi/README.md``."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from dpkeras import ipi
from dpkeras.errors import DPKerasError

HERE = os.path.dirname(__file__)
IPI = os.path.join(HERE, "data", "deepmd_ipi")
WATER_PB = os.path.join(HERE, "data", "water_se_e2_a", "frozen_model.pb")
SERVER = os.path.join(os.path.dirname(sys.executable), "i-pi")

pytest.importorskip("ase")
if not os.path.exists(SERVER):   # pragma: no cover - the test extra installs ipi
    pytest.skip("the i-pi server is not installed (pip install ipi)", allow_module_level=True)


def _example(tmp_path, model):
    """The example in ``tmp_path`` with a socket address of its own (tests may run together)."""
    for name in ("conf.xyz", "input.xml", "water.json"):
        shutil.copy(os.path.join(IPI, name), tmp_path / name)
    address = f"dpkeras_{os.getpid()}_{tmp_path.name}"[:80]
    xml = (tmp_path / "input.xml").read_text()
    assert "<address>localhost</address>" in xml
    (tmp_path / "input.xml").write_text(xml.replace("<address>localhost</address>",
                                                    f"<address>{address}</address>"))
    cfg = json.loads((tmp_path / "water.json").read_text())
    cfg.update(host=address, graph_file=model)
    (tmp_path / "water.json").write_text(json.dumps(cfg))
    return address


def _xyz(path):
    lines = open(path).read().splitlines()
    n = int(lines[0])
    rows = [ln.split() for ln in lines[2:2 + n]]
    return [r[0] for r in rows], np.array([[float(x) for x in r[1:4]] for r in rows])


@pytest.mark.parametrize("model", ["graph.pb", "water-se-e2-a-mini"])
def test_ipi_example_first_step_equals_deeppot(tmp_path, model):
    """i-PI (NPT, GLE thermostat, 20 steps) driven by `python -m dpkeras.ipi water.json` with a
    DeePMD-kit graph or a dpkeras zoo model (by name): the server finishes, and its step-0
    potential is DeepPot's energy of conf.xyz (through i-PI's own eV constant; 9 digits
    printed)."""
    from ipi.utils.units import unit_to_internal

    from dpkeras.infer import open_deep_pot

    shutil.copy(WATER_PB, tmp_path / "graph.pb")
    address = _example(tmp_path, model)
    server = subprocess.Popen([SERVER, "input.xml"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(600):
            if os.path.exists(f"/tmp/ipi_{address}") or server.poll() is not None:
                break
            time.sleep(0.1)
        client = subprocess.run([sys.executable, "-m", "dpkeras.ipi", "water.json"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=600)
        out, _ = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    assert client.returncode == 0, client.stderr[-2000:]
    assert server.returncode == 0, out[-2000:]
    assert "connected to i-PI at /tmp/ipi_" in client.stderr
    rows = np.loadtxt(tmp_path / "simulation.out", ndmin=2)
    names, coord = _xyz(tmp_path / "conf.xyz")
    types = [{"O": 0, "H": 1}[n] for n in names]
    e = open_deep_pot(str(tmp_path / model) if model == "graph.pb" else model).eval(
        coord.reshape(1, -1), np.diag([12.44470] * 3).reshape(1, 9), types)[0][0, 0]
    # i-PI: energy in Hartree from the client (ASE's Ha), printed in eV by its own constant
    from ase import units

    expected = unit_to_internal("energy", "electronvolt", 1.0) ** -1 * e / units.Ha
    assert rows[0, 0] == 0 and rows[0, 5] == pytest.approx(expected, rel=1e-8)
    assert (tmp_path / "simulation.pos_0.xyz").exists()


def test_dp_ipi_json_is_checked(tmp_path):
    """Unknown keys, a missing key, atom names the coord file lacks, a bad type index."""
    (tmp_path / "conf.xyz").write_text("2\ncell\nOW 0 0 0\nHW1 1 0 0\n")
    base = {"graph_file": WATER_PB, "coord_file": str(tmp_path / "conf.xyz"),
            "atom_type": {"OW": 0, "HW1": 1}, "use_unix": True, "host": "nowhere_dpkeras"}

    def check(cfg, match):
        (tmp_path / "w.json").write_text(json.dumps(cfg))
        with pytest.raises(DPKerasError, match=match):
            ipi.serve(str(tmp_path / "w.json"))

    check(dict(base, graph="x"), r"unknown key\(s\) \['graph'\]")
    check({k: v for k, v in base.items() if k != "coord_file"}, r"missing key\(s\) \['coord_file'\]")
    # DeePMD-kit's own example pairs atom_type {OW, HW1, HW2} with a conf.xyz of O/H names
    check(dict(base, atom_type={"O": 0, "H": 1}), r"atom name\(s\) \['HW1', 'OW'\] of coord_file "
                                                  r"are not in atom_type")
    check(dict(base, atom_type={"OW": 0, "HW1": 5}), r"atom_type index\(es\) \[5\] are not types "
                                                     r"of the model")
    check(base, r"could not connect to the i-PI server at /tmp/ipi_nowhere_dpkeras")
    with pytest.raises(DPKerasError, match="no such file"):
        ipi.serve(str(tmp_path / "missing.json"))
