"""Build tests/data/deepmd_suite/*.npz + cases.json from DeePMD-kit test sources."""
import ast
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, "/tmp/work")
from extract import method_locals, setup_attrs  # noqa: E402

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)

REPO = "deepmodeling/deepmd-kit"
HEAD = "bc902daf747d93c5d7314338d287fd2dd0a7e32c"
OLD = "3af248f1162566c7a43e4640ecc319a1dc4549f9"  # parent of 8201ebc (#4028, 2024-08-05)
SRC = {
    "test_deeppot_a.py": (OLD, "source/tests/tf/test_deeppot_a.py"),
    "test_deeppot_r.py": (OLD, "source/tests/tf/test_deeppot_r.py"),
    "test_deepdipole.py": (HEAD, "source/tests/tf/test_deepdipole.py"),
    "test_deeppolar.py": (HEAD, "source/tests/tf/test_deeppolar.py"),
    "test_deepdos.py": (HEAD, "source/tests/tf/test_deepdos.py"),
    "test_deeppot_spin.py": (HEAD, "source/tests/tf/test_deeppot_spin.py"),
    "test_dipolecharge.py": (HEAD, "source/tests/tf/test_dipolecharge.py"),
    "test_descrpt_se_a_mask.py": (HEAD, "source/tests/tf/test_descrpt_se_a_mask.py"),
    "test_model_devi.py": (HEAD, "source/tests/tf/test_model_devi.py"),
    "test_model_devi_mix.py": (HEAD, "source/tests/tf/test_model_devi_mix.py"),
    "lmp_test_lammps.py": (HEAD, "source/lmp/tests/test_lammps.py"),
    "cc_test_deeppot_model_devi.cc": (HEAD, "source/api_cc/tests/test_deeppot_model_devi.cc"),
    "cc_spin.cc": (HEAD, "source/api_cc/tests/test_deeppot_tf_spin.cc"),
    "cc_test_dipolecharge.cc": (HEAD, "source/api_cc/tests/test_dipolecharge.cc"),
}

PLACES10 = ("numpy.testing.assert_almost_equal(actual.ravel(), desired.ravel(), decimal=10) "
            "(default_places=10 in float64 builds, 4 in float32 builds): passes iff "
            "abs(desired - actual) < 1.5e-10 elementwise")

cases = []


def f64(x):
    return np.asarray(x, dtype=np.float64)


def save(name, graph, srcfile, cls, arrays, tol, options, notes="", derived=()):
    commit, path = SRC[srcfile]
    fn = f"{name}.npz"
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(os.path.join(OUT, fn), **arrays)
    cases.append({
        "file": fn,
        "graph": None if graph is None else (graph if isinstance(graph, list) else f"{graph}.pb"),
        "source": {"repo": REPO, "commit": commit, "path": path, "class": cls},
        "arrays": {k: [list(np.shape(v)), str(np.asarray(v).dtype)] for k, v in arrays.items()},
        "derived_in_test_code": list(derived),
        "tolerance": tol,
        "options": options,
        "notes": notes,
    })


# ---------------------------------------------------------------- energy models
def ener_case(name, graph, srcfile, cls, options, notes=""):
    d, owner, failed = setup_attrs(srcfile, cls)
    assert not [f for f in failed if "default_places" not in f[0]], failed
    atype = np.asarray(d["atype"], dtype=np.int32)
    nat = atype.size
    nframes = 1
    ae = f64(d["expected_e"]).reshape(nframes, nat)
    av = f64(d["expected_v"]).reshape(nframes, nat * 9)
    arr = {
        "coord": f64(d["coords"]).reshape(nframes, nat * 3),
        "box": None if d["box"] is None else f64(d["box"]).reshape(nframes, 9),
        "atype": atype,
        "pbc": np.array(d["box"] is not None),
        # exactly as the test: expected_se = np.sum(expected_e.reshape([nframes, -1]), axis=1)
        "energy": np.sum(ae.reshape([nframes, -1]), axis=1).reshape(nframes, 1),
        "force": f64(d["expected_f"]).reshape(nframes, nat * 3),
        # expected_sv = np.sum(expected_v.reshape([nframes, -1, 9]), axis=1)
        "virial": np.sum(av.reshape([nframes, -1, 9]), axis=1),
        "atom_energy": ae,
        "atom_virial": av,
    }
    if "fparam" in d:
        arr["fparam"] = f64(d["fparam"]).reshape(nframes, -1)
        arr["aparam"] = f64(d["aparam"]).reshape(nframes, -1)
    owner_note = f" (setUp inherited from {owner})" if owner != cls else ""
    save(name, graph, srcfile, cls + owner_note, arr, PLACES10, options, notes,
         derived=("energy", "virial"))


TM_OH = ["O", "H"]
ener_case("deeppot-pbc", "deeppot", "test_deeppot_a.py", "TestDeepPotAPBC",
          {"type_map": TM_OH, "atomic": True, "eval": "DeepPot('deeppot.pb').eval(coords, box, atype, atomic=True)"},
          "Also used by TestDeepPotAPBCNeighborList (ASE NewPrimitiveNeighborList(cutoffs=6, bothways=True)), same numbers. "
          "Same numbers as source/lmp/tests/test_lammps.py expected_ae/expected_f/expected_v (LAMMPS sign convention aside).")
ener_case("deeppot-nopbc", "deeppot", "test_deeppot_a.py", "TestDeepPotANoPBC",
          {"type_map": TM_OH, "atomic": True, "eval": "dp.eval(coords, None, atype, atomic=True)"})
ener_case("deeppot-largebox", "deeppot", "test_deeppot_a.py", "TestDeepPotALargeBoxNoPBC",
          {"type_map": TM_OH, "atomic": True, "eval": "dp.eval(coords, box, atype, atomic=True) with box diag(19,13,13) (PBC)"},
          "Class name says NoPBC but the box [19,13,13] IS passed, i.e. periodic evaluation.")
ener_case("deeppot-r-pbc", "deeppot-r", "test_deeppot_r.py", "TestDeepPotRPBC",
          {"type_map": TM_OH, "atomic": True})
ener_case("deeppot-r-nopbc", "deeppot-r", "test_deeppot_r.py", "TestDeepPotRNoPBC",
          {"type_map": TM_OH, "atomic": True, "eval": "dp.eval(coords, None, atype, atomic=True)"})
ener_case("deeppot-r-largebox", "deeppot-r", "test_deeppot_r.py", "TestDeepPotRLargeBoxNoPBC",
          {"type_map": TM_OH, "atomic": True, "eval": "box diag(19,13,13) (PBC)"},
          "Class name says NoPBC but the box [19,13,13] IS passed, i.e. periodic evaluation.")
ener_case("fparam_aparam-pbc", "fparam_aparam", "test_deeppot_a.py", "TestFparamAparam",
          {"type_map": "graph model_attr/tmap is the EMPTY string (training_script has type_map ['O']); the old test does not assert get_type_map()", "ntypes": 1, "atomic": True, "dim_fparam": 1, "dim_aparam": 1,
           "eval": "dp.eval(coords, box, atype, fparam=0.25852028, aparam=np.repeat(0.25852028, 6), atomic=True)"},
          "test_attrs: get_ntypes()==1, get_rcut()==6.0, dim_fparam==1, dim_aparam==1. "
          "fparam was passed as a python scalar, aparam as shape (6,); stored here as [1,1] and [1,6].")

# ---------------------------------------------------------------- tensor models
def tensor_case(name, graph, srcfile, cls, kind, sel_type, nopbc=False, options=None, notes=""):
    d, owner, failed = setup_attrs(srcfile, cls, sel_type=sel_type)
    assert not failed, failed
    atype = np.asarray(d["atype"], dtype=np.int32)
    nat = atype.size
    nout = 3 if kind == "dipole" else 9
    sel_mask = np.isin(atype, sel_type)
    nsel = int(sel_mask.sum())
    at = f64(d["expected_d"] if "expected_d" in d else d["expected_t"]).reshape(1, nsel * nout)
    arr = {
        "coord": f64(d["coords"]).reshape(1, nat * 3),
        "box": None if nopbc else f64(d["box"]).reshape(1, 9),
        "atype": atype,
        "pbc": np.array(not nopbc),
        "sel_type": np.asarray(sel_type, dtype=np.int32),
        "sel_mask": sel_mask,
        "atom_" + kind: at,
    }
    derived = []
    if "expected_gt" in d:
        arr[kind] = f64(d["expected_gt"]).reshape(1, nout)
        arr[kind + "_force"] = f64(d["expected_f"]).reshape(1, nout, nat * 3)
        arr[kind + "_virial"] = f64(d["expected_gv"]).reshape(1, nout, 9)
        arr["atom_" + kind + "_virial"] = f64(d["expected_v"]).reshape(1, nout, nat * 9)
        derived = [kind, kind + "_virial"]
    if "target_t" in d:
        arr["fake_target_" + kind] = f64(d["target_t"]).reshape(1, nsel * nout)
    if nopbc:
        arr["box_large"] = f64(d["box"]).reshape(1, 9)
    save(name, graph, srcfile, cls, arr, PLACES10, options or {}, notes, derived=derived)


tensor_case("deepdipole-pbc", "deepdipole", "test_deepdipole.py", "TestDeepDipolePBC", "dipole", [0],
            options={"type_map": TM_OH, "rcut": 4.0, "eval": "DeepDipole(pb).eval(coords, box, atype)[:, sel_mask]"})
tensor_case("deepdipole-nopbc", "deepdipole", "test_deepdipole.py", "TestDeepDipoleNoPBC", "dipole", [0], nopbc=True,
            options={"type_map": TM_OH, "eval": "dp.eval(coords, None, atype)[:, sel_mask]; also test_1frame_atm_large_box: dp.eval(coords, box_large=diag(20,20,20), atype) -> same expected"})
tensor_case("deepdipole_new-pbc", "deepdipole_new", "test_deepdipole.py", "TestDeepDipoleNewPBC", "dipole", [0],
            options={"type_map": TM_OH, "rcut": 4.0,
                     "eval": "gt, ff, vv, at, av = DeepDipole(pb).eval_full(coords, box, atype, atomic=True); at = at[:, sel_mask]",
                     "layouts": "eval_full shapes: gt (nf,nout), ff (nf,nout,natoms,3), vv (nf,nout,9), at (nf,natoms,nout) before sel_mask, av (nf,nout,natoms,9)"},
            notes="Also TestDeepDipoleNewPBCNeighborList (ASE neighbor list, cutoffs=6). dipole (global) = sum of atomic dipoles of selected atoms; dipole_virial = sum over atoms of atom_dipole_virial, both as computed in the test code.")
tensor_case("deepdipole_fake-pbc", "deepdipole_fake", "test_deepdipole.py", "TestDeepDipoleFakePBC", "dipole", [0, 1],
            options={"type_map": TM_OH, "rcut": 2.0, "eval": "eval_full(coords, box, atype, atomic=True)"},
            notes="sel_type=[0,1] (all atoms). fake_target_dipole is an analytic target the model was fitted to; the test asserts np.testing.assert_allclose(target, atom_dipole, atol=3e-2) only; the model outputs are checked at places=10.")
tensor_case("deeppolar-pbc", "deeppolar", "test_deeppolar.py", "TestDeepPolarPBC", "polar", [0],
            options={"type_map": TM_OH, "rcut": 6.0, "eval": "DeepPolar(pb).eval(coords, box, atype)[:, sel_mask]"})
tensor_case("deeppolar-nopbc", "deeppolar", "test_deeppolar.py", "TestDeepPolarNoPBC", "polar", [0], nopbc=True,
            options={"type_map": TM_OH, "eval": "dp.eval(coords, None, atype)[:, sel_mask]; also with box_large=diag(20,20,20) -> same expected"})
tensor_case("deeppolar_new-pbc", "deeppolar_new", "test_deeppolar.py", "TestDeepPolarNewPBC", "polar", [0],
            options={"type_map": TM_OH, "rcut": 6.0,
                     "eval": "gt, ff, vv, at, av = DeepPolar(pb).eval_full(coords, box, atype, atomic=True); at = at[:, sel_mask]",
                     "layouts": "as deepdipole_new with nout=9"},
            notes="polar (global) = sum of atomic polarizabilities of selected atoms; polar_virial = sum over atoms of atom_polar_virial (as in the test).")

# ---------------------------------------------------------------- DOS
d, _, failed = setup_attrs("test_deepdos.py", "TestDeepDOS")
assert not failed
atype = np.asarray(d["atype"], dtype=np.int32)
save("deepdos-pbc", "deepdos", "test_deepdos.py", "TestDeepDOS", {
    "coord": f64(d["coords"]).reshape(1, -1), "box": f64(d["box"]).reshape(1, 9), "atype": atype,
    "pbc": np.array(True),
    "dos": f64(d["expected_dos"]).reshape(1, 250),
    "atom_dos_atom0": f64(d["expected_ados_1"]).reshape(1, 250),
    "atom_dos_atom1": f64(d["expected_ados_2"]).reshape(1, 250),
}, "numpy.testing.assert_almost_equal(..., decimal=4): abs(desired - actual) < 1.5e-4",
    {"type_map": ["Si"], "numb_dos": 250, "rcut": 5.0,
     "eval": "dd = DeepDOS(pb).eval(coords, box, atype, atomic=True); dd[0] global (nf,250), dd[1] atomic (nf,natoms,250)"},
    "Only atoms 0 and 1 of the atomic DOS are checked (ados_list[0], ados_list[1]).")

# ---------------------------------------------------------------- spin (virtual-atom TF spin)
d, _, failed = setup_attrs("test_deeppot_spin.py", "TestDeepPotAPBC")
assert not failed
ae = f64(d["expected_e"]).reshape(1, -1)
av = f64(d["expected_v"]).reshape(1, -1)
save("deepspin-pbc", "deepspin", "test_deeppot_spin.py", "TestDeepPotAPBC", {
    "coord": f64(d["coords"]).reshape(1, -1), "box": f64(d["box"]).reshape(1, 9),
    "atype": np.asarray(d["atype"], dtype=np.int32), "pbc": np.array(True),
    "force_real": f64(d["expected_fr"]).reshape(1, -1),
    "force_mag": f64(d["expected_fm"]).reshape(1, -1),
    "force": np.concatenate([f64(d["expected_fr"]), f64(d["expected_fm"])]).reshape(1, -1),
    "atom_energy": ae, "atom_virial": av,
    "energy": np.sum(ae.reshape([1, -1]), axis=1).reshape(1, 1),
    "virial": np.sum(av.reshape([1, -1, 9]), axis=1),
}, PLACES10,
    {"type_map": ["Ni", "O"], "ntypes": 3, "ntypes_spin": 1, "rcut": 5.6, "atomic": True,
     "eval": "DeepPot(pb).eval(coords, box, atype, atomic=True); force = ff.reshape([1,-1]); force_real = force[:, :12], force_mag = force[:, 12:18]"},
    "atype [0,0,1,1,2,2]: types 0=Ni,1=O real atoms, type 2 = virtual spin atoms of Ni (positions in coords). "
    "ff has 6 atoms; ae has 4 entries (real atoms only), av has 6x9. 'force' here = concat(force_real, force_mag) = ff.reshape(1,-1).",
    derived=("energy", "virial", "force"))

# ---------------------------------------------------------------- DipoleChargeModifier (DPLR)
d, _, failed = setup_attrs("test_dipolecharge.py", "TestDipoleCharge")
assert not failed
save("dipolecharge_d-pbc", "dipolecharge_d", "test_dipolecharge.py", "TestDipoleCharge", {
    "coord": f64(d["coords"]).reshape(1, -1), "box": f64(d["box"]).reshape(1, 9),
    "atype": np.asarray(d["atype"], dtype=np.int32), "pbc": np.array(True),
    "energy": f64(d["expected_e"]).reshape(1, 1),
    "force": f64(d["expected_f"]).reshape(1, -1),
    "virial": f64(d["expected_v"]).reshape(1, 9),
}, "numpy.testing.assert_almost_equal(actual, desired) with the default decimal=7: abs(desired - actual) < 1.5e-7",
    {"type_map": ["A", "B", "C", "D", "E"], "ntypes": 5, "rcut": 4.0,
     "modifier": "DipoleChargeModifier(model_name='dipolecharge_d.pb', model_charge_map=[-1.0, -3.0], sys_charge_map=[1.0, 1.0, 1.0, 1.0, 1.0], ewald_h=4.0, ewald_beta=0.2)",
     "eval": "ee, ff, vv = dm.eval(coords[1,8,3], box, atype, eval_fv=True)"},
    "These are the long-range (Ewald reciprocal) correction energy/force/virial of the DPLR modifier, not a DeepPot output: "
    "atoms of sys types get charge sys_charge_map[type]; each atom of the dipole sel types gets a Wannier centroid at "
    "coord + predicted dipole with charge model_charge_map[i]; energy from EwaldRecp(ewald_h, ewald_beta). "
    "Same numbers are used by source/api_cc/tests/test_dipolecharge.cc with dipolecharge_e.pbtxt (prefix 'dipole_charge').")

# ---------------------------------------------------------------- dp4mask (loose)
loc, _, failed = method_locals("test_descrpt_se_a_mask.py", "TestModel", "test_dp_mask_model")
assert "ee, ff, vv" in failed[0][0], failed
save("dp4mask-ref", "dp4mask", "test_descrpt_se_a_mask.py", "TestModel.test_dp_mask_model", {
    "coord": f64(loc["dcoord"]).reshape(1, -1), "box": f64(loc["dbox"]).reshape(1, 9),
    "atype": np.asarray(loc["datype"], dtype=np.int32), "pbc": np.array(True),
    "aparam": f64(loc["aparam"]).reshape(1, -1),
    "force_label": f64(loc["expected_f"]).reshape(1, -1),
    "atom_pref": f64(loc["atom_pref"]).reshape(1, -1),
}, "VERY LOOSE: ff compared to force_label as sqrt(sum(atom_pref*(ff-force_label)**2)/sum(atom_pref)) < 100",
    {"type_map (graph tmap)": ["C", "ZN"], "eval": "ee, ff, vv = DeepPot('dp4mask.pb').eval(dcoord, dbox, datype, aparam=aparam)",
     "aparam_meaning": "aparam is the per-atom mask (1 real atom, 0 virtual/padding)"},
    "force_label are reference labels (training data), NOT outputs of this model; only a smoke test. "
    "dbox is 'Not used in practice. For interface compatibility.' (comment in the test).")

# ---------------------------------------------------------------- se_e2_a_tebd type embedding
loc, _, failed = method_locals("test_deeppot_a.py", "TestTypeEmbed", "test_eval_typeebd")
save("se_e2_a_tebd-typeebd", "se_e2_a_tebd", "test_deeppot_a.py", "TestTypeEmbed.test_eval_typeebd", {
    "type_embedding": f64(loc["expected_typeebd"]),
}, PLACES10, {"eval": "DeepPot('se_e2_a_tebd.pb').eval_typeebd()  (TF: runs the graph output t_typeebd)"},
    "Only the type-embedding network output is tested for this graph (no energies).")

# ---------------------------------------------------------------- model deviation
def parse_cc_vec(text, name):
    import re
    m = re.search(r"std::vector<\w+>\s+" + re.escape(name) + r"\s*=\s*\{([^}]*)\}", text)
    body = re.sub(r"//[^\n]*", "", m.group(1))
    return np.array([float(x) for x in body.replace("\n", " ").split(",") if x.strip()])


cc = open("/tmp/src/cc_test_deeppot_model_devi.cc").read()
cls_start = cc.index("class TestInferDeepPotModeDeviPython")
cc_py = cc[cls_start:cc.index("TYPED_TEST_SUITE(TestInferDeepPotModeDeviPython")]
coord6 = parse_cc_vec(cc_py, "coord").reshape(1, 18)
atype6 = np.array([int(x) for x in __import__("re").search(r"std::vector<int> atype = \{([^}]*)\}", cc_py).group(1).split(",")], dtype=np.int32)
md_f = parse_cc_vec(cc_py, "expected_md_f")
md_v = parse_cc_vec(cc_py, "expected_md_v")
box20 = parse_cc_vec(cc_py, "box").reshape(1, 9)
d, _, failed = setup_attrs("test_model_devi.py", "TestMakeModelDevi")
expect = f64(d["expect"]).reshape(1, 8) if "expect" in d else None
if expect is None:  # setUp needs gen_data(); take the literal via ast
    mod = ast.parse(open("/tmp/src/test_model_devi.py").read())
    for node in ast.walk(mod):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "self.expect":
            expect = f64(eval(ast.unparse(node.value), {"np": np})).reshape(1, 8)
            break
MD_COLS = ["step", "max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f", "avg_devi_f", "devi_e"]
save("model_devi-deeppot_deeppot-1", ["deeppot.pb", "deeppot-1.pb"], "test_model_devi.py", "TestMakeModelDevi.test_calc_model_devi", {
    "coord": np.concatenate([coord6, coord6]), "atype": atype6, "pbc": np.array(False),
    "box_cpp": box20,
    "model_devi": expect,
    "cpp_md_f": md_f.reshape(1, 3), "cpp_md_v": md_v.reshape(1, 3),
}, "python: np.testing.assert_almost_equal(model_devi[0][1:8], model_devi_expected[0][1:8], 6) -> abs < 1.5e-6 (and frame 1 == frame 0 to 1.5e-6); "
   "C++ (source/api_cc/tests/test_deeppot_model_devi.cc, TestInferDeepPotModeDeviPython): fabs(x - expected) < EPSILON "
   "(EPSILON = 1e-10 for double, 1e-4 for float in test_utils.h)",
    {"python_eval": "calc_model_devi(coord[2,18], None, atype, [DeepPot('deeppot.pb'), DeepPot('deeppot-1.pb')], frequency=10)",
     "model_devi_columns": MD_COLS,
     "formulas": "e_k = E_k/natoms, v_k = V_k/natoms for model k; max/min/avg_devi_f over atoms of |std_k(F_k,i)| (np.std, ddof=0, norm over xyz); "
                 "devi_v = std_k(v_k) elementwise over 9 components, max/min, avg = ||devi_v||_2/3; devi_e = std_k(e_k)",
     "cpp": "cpp_md_f = [max,min,avg] of std_f, cpp_md_v = [max,min,sqrt(mean(square))] of std of virial/natoms, "
            "computed with PBC box_cpp = diag(20,20,20) and a LAMMPS-style nlist; the atoms span < 5.2 A in x (< 1.2 A in y,z), so every periodic image is > 14 A > rcut = 6 A away and the periodic result equals the open-boundary one"},
    "coord = the 6-atom system of source/tests/tf/common.py gen_data() (Data(rand_pert=0.1, seed=1), sorted by type) -- identical, bit for bit, to the literal "
    "coordinates in the C++ test; two identical frames (np.vstack([coord, coord])). Row model_devi[0] is frame 0; step column = 0. "
    "The C++ test uses the same coordinates with box diag(20,20,20) periodic; its numbers agree with the python ones to the printed digits.")

d_mix = None
mod = ast.parse(open("/tmp/src/test_model_devi_mix.py").read())
for node in ast.walk(mod):
    if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "self.expect":
        ns = {"np": np, "self": type("S", (), {"freq": 10})()}
        expect_mix = f64(eval(ast.unparse(node.value), ns))
        break
mixed_atype = np.vstack([atype6, atype6]).astype(np.int32)
mixed_atype[1][0] = 1
mixed_atype[1][-1] = 0
save("model_devi-se_atten_no_atten_1_2", ["se_atten_no_atten_1.pb", "se_atten_no_atten_2.pb"], "test_model_devi_mix.py", "TestMakeModelDeviMix", {
    "coord": np.concatenate([coord6, coord6]), "atype": atype6, "atype_mixed": mixed_atype,
    "pbc": np.array(False), "model_devi": expect_mix,
}, "np.testing.assert_almost_equal(model_devi[i][1:8], expect[i][1:8], 6) -> abs < 1.5e-6",
    {"test_calc_model_devi": "calc_model_devi(coord, None, atype, graphs, frequency=10): only row 0 checked (frame 0 == frame 1)",
     "test_calc_model_devi_mixed": "calc_model_devi(coord, None, atype_mixed, graphs, frequency=10, mixed_type=True): row 0 (frame 0, atype_mixed[0]) and row 1 (frame 1, atype_mixed[1], first atom set to type 1, last to type 0)",
     "model_devi_columns": MD_COLS, "type_map": TM_OH},
    "se_atten (DPA-1) graphs with attention layers = 0, mixed-type capable. Same gen_data() coordinates as the deeppot model-devi case.")

# ---------------------------------------------------------------- deeppot-1 forces (LAMMPS test)
lmp = ast.parse(open("/tmp/src/lmp_test_lammps.py").read())
lns = {"np": np}
for node in lmp.body:
    if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) in ("expected_f2", "box", "coord", "type_OH"):
        exec(compile(ast.Module(body=[node], type_ignores=[]), "<lmp>", "exec"), lns)
assert list(lns["box"]) == [0, 13, 0, 13, 0, 13, 0, 0, 0]
save("deeppot-1-pbc-force", "deeppot-1", "lmp_test_lammps.py", "module-level expected_f2 (test_pair_deepmd_model_devi*)", {
    "coord": f64(lns["coord"]).reshape(1, 18),
    "box": np.diag([13.0, 13.0, 13.0]).reshape(1, 9),
    "atype": (np.asarray(lns["type_OH"]) - 1).astype(np.int32),
    "pbc": np.array(True),
    "force": f64(lns["expected_f2"]).reshape(1, 18),
}, "forces printed with only 7-8 decimals (e.g. -0.6454949, 1.72457783): rounding error up to 5e-8. In the LAMMPS test they enter only via the "
   "model deviation np.linalg.norm(np.std([expected_f, expected_f2], axis=0), axis=1), compared with pytest.approx (rel=1e-6, abs=1e-12).",
    {"type_map": TM_OH, "lammps": "units metal, boundary p p p, box 0..13 in x,y,z, LAMMPS types 1=O 2=H (type_OH=[1,2,2,1,2,2]) -> DeePMD atype [0,1,1,0,1,1]"},
    "deeppot-1.pbtxt has no other directly printed outputs in the suite; these forces are the only per-model numbers. Same coordinates as deeppot-pbc.")

# ---------------------------------------------------------------- C++-only: deepspin_nlist, dipolecharge_e
import re as _re


def cc_class(text, cname):
    i = text.index("class " + cname + " ")
    j = text.index("TYPED_TEST_SUITE(" + cname, i)
    return text[i:j]


def cc_int_vec(text, name):
    m = _re.search(r"std::vector<int>\s+" + name + r"\s*=\s*\{([^}]*)\}", text)
    return np.array([int(x) for x in m.group(1).split(",") if x.strip()], dtype=np.int32)


spin_cc = open("/tmp/src/cc_spin.cc").read()
for cname, case in (("TestInferDeepSpin", "deepspin_nlist-pbc"), ("TestInferDeepSpinNopbc", "deepspin_nlist-box100")):
    t = cc_class(spin_cc, cname)
    at = cc_int_vec(t, "atype")
    nat = at.size
    ae = parse_cc_vec(t, "expected_e").reshape(1, nat)
    av = parse_cc_vec(t, "expected_v").reshape(1, -1)
    assert av.size == (nat + 2) * 9
    save(case, "deepspin_nlist", "cc_spin.cc", cname, {
        "coord": parse_cc_vec(t, "coord").reshape(1, nat * 3),
        "spin": parse_cc_vec(t, "spin").reshape(1, nat * 3),
        "box": parse_cc_vec(t, "box").reshape(1, 9),
        "atype": at, "pbc": np.array(True),
        "atom_energy": ae,
        "energy": ae.sum(axis=1).reshape(1, 1),
        "force": parse_cc_vec(t, "expected_f").reshape(1, nat * 3),
        "force_mag": parse_cc_vec(t, "expected_fm").reshape(1, nat * 3),
        "atom_virial": av,
        "virial": av.reshape(1, -1, 9).sum(axis=1),
    }, "C++ gtest: fabs(actual - expected) < EPSILON, EPSILON = 1e-10 (double) / 1e-4 (float) (source/api_cc/tests/test_utils.h)",
        {"type_map": ["Ni", "O"], "api": "deepmd::DeepSpin::compute(ener, force, force_mag, virial, atom_ener, atom_vir, coord, spin, atype, box)",
         "spin_input": "per-atom spin vectors (nloc x 3), real atoms only. The graph has no spin placeholder: DeepSpinTF::extend_nlist (source/api_cc/src/DeepSpinTF.cc @ HEAD) appends, for each real atom i with type_i < ntypes_spin, a virtual atom at index i + nloc with coord_i + spin_i / spin_attr/spin_norm[type_i] * spin_attr/virtual_len[type_i] and type type_i + ntypes - ntypes_spin, then runs the graph on the extended system"},
        "C++-only case (no Python test). energy = sum(expected_e) and virial = sum over the (natoms+2) rows of expected_v, as the C++ SetUp computes "
        "expected_tot_e / expected_tot_v. atom_virial has (natoms+2)*9 entries (as asserted in the C++ SetUp: EXPECT_EQ((natoms + 2) * 9, expected_v.size())). "
        + ("Class name says Nopbc but a 100x100x100 periodic box is passed." if "100" in case else ""),
        derived=("energy", "virial"))

dc = cc_class(open("/tmp/src/cc_test_dipolecharge.cc").read(), "TestDipoleCharge")
save("dipolecharge_e-pbc", "dipolecharge_e", "cc_test_dipolecharge.cc", "TestDipoleCharge.cpu_lmp_nlist", {
    "coord": parse_cc_vec(dc, "coord").reshape(1, -1), "box": parse_cc_vec(dc, "box").reshape(1, 9),
    "atype": cc_int_vec(dc, "atype"), "pbc": np.array(True),
    "energy": parse_cc_vec(dc, "expected_e").reshape(1, 1),
    "force": parse_cc_vec(dc, "expected_f").reshape(1, -1),
    "virial": parse_cc_vec(dc, "expected_v").reshape(1, 9),
    "charge_map": parse_cc_vec(dc, "charge_map"),
}, "C++ gtest: |e - expected_e| < 1e-6, |f - expected_f| < 1e-6, |v - expected_v| < 1e-5",
    {"api": "deepmd::DeepTensor dp.init(model, 0, 'dipole_charge'); deepmd::DipoleChargeModifier dm.init(model, 0, 'dipole_charge') -- node names carry the prefix 'dipole_charge/'",
     "rc": 4.0, "ewald": "beta=0.2, spacing=4", "type_asso": "type 1 -> virtual type 5, type 3 -> virtual type 6 (Wannier centroids at coord + dipole)",
     "charge_map": "charge by (extended) type index 0..6: [1,1,1,1,1,-1,-3]"},
    "Same expected numbers as dipolecharge_d-pbc (python); coordinates printed with 10 decimals here. The energy is the Ewald reciprocal energy of "
    "atoms + Wannier centroids; force is compared only for the 8 real atoms; virial = dm virial + ewald virial - sum eforce(wc) x dipole.")

json.dump({"repo": REPO, "head_commit": HEAD, "cases": cases}, open(os.path.join(OUT, "cases.json"), "w"), indent=1)
print(len(cases), "cases")
