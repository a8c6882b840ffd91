#!/usr/bin/env python3
"""Carry-forward check: do .dp files that dpkeras wrote from OLD DeePMD-kit frozen graphs evaluate,
in DeePMD-kit 3.x, to the numbers the old DeePMD-kit releases gave?

Run with the DeePMD-kit 3.2 side venv (``bash /work/shared/tools/deepmd-venv.sh``), from the repo root:

    # 1. dpkeras' venv writes the .dp files (one per graph, names as in CASES below):
    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python -m dpkeras.freeze --checkpoint=GRAPH --output=DPDIR/NAME.dp [--head=H]
    # 2. DeePMD-kit 3.2 evaluates them:
    TF_CPP_MIN_LOG_LEVEL=3 ~/.cache/dpkeras-deepmd-venv/bin/python tests/data/fixture_tools/check_carry_forward.py DPDIR

For every NAME.dp it
  (a) evaluates NAME.dp with ``deepmd.infer.DeepPot`` (3.x picks the backend from the suffix: .dp is the
      numpy DPModel backend), ``atomic=True``, on the inputs of each reference npz (box=None for no-PBC);
  (b) runs ``dp convert-backend NAME.dp NAME.pb`` (TensorFlow backend) and, when that works, evaluates
      NAME.pb the same way; likewise ``NAME.savedmodeltf`` (TensorFlow2 backend) and ``NAME.pth``
      (PyTorch; only if torch is installed in the venv);
and prints max|a-b|/max|b| for energy, force, virial, atom_energy, atom_virial against the reference
(NaN = the backend returned no value for that key). For the se_atten cases it then compares DeePMD-kit's
numpy DPModel backend with its TF backend on the same weights, with attention layers / attn_dotr /
temperature varied (``se_atten_diagnosis``), to show where those two 3.x backends disagree.
Scratch files go to DPDIR/converted and DPDIR/diag.
Nothing here needs dpkeras. References were produced by old DeePMD-kit releases (see the fixture READMEs).
"""
import os
import subprocess
import sys
import traceback

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
S = "tests/data/deepmd_suite"
L = "tests/data/legacy_v2_2"
# name, source graph, era of the graph / reference numbers, [reference npz]
CASES = [
    ("deeppot", f"{S}/deeppot.pb",
     "DeePMD-kit test-suite graph (model_version 1.1); numbers from deepmd-kit tests @3af248f",
     [f"{S}/deeppot-pbc.npz", f"{S}/deeppot-nopbc.npz", f"{S}/deeppot-largebox.npz"]),
    ("deeppot-r", f"{S}/deeppot-r.pb",
     "DeePMD-kit test-suite graph (model_version 1.1); numbers from deepmd-kit tests @3af248f",
     [f"{S}/deeppot-r-pbc.npz", f"{S}/deeppot-r-nopbc.npz", f"{S}/deeppot-r-largebox.npz"]),
    ("water_se_e2_a", f"{L}/water_se_e2_a/frozen_model.pb", "2.2.11",
     [f"{L}/water_se_e2_a/reference.npz", f"{L}/water_se_e2_a/reference_nopbc.npz"]),
    ("water_se_atten", f"{L}/water_se_atten/frozen_model.pb", "2.2.11",
     [f"{L}/water_se_atten/reference.npz", f"{L}/water_se_atten/reference_nopbc.npz"]),
    ("water_se_e2_a_v2.1.5", f"{L}/water_se_e2_a_v2.1.5/frozen_model.pb", "2.1.5",
     [f"{L}/water_se_e2_a_v2.1.5/reference.npz", f"{L}/water_se_e2_a_v2.1.5/reference_nopbc.npz"]),
    ("water_se_atten_v2.1.5", f"{L}/water_se_atten_v2.1.5/frozen_model.pb", "2.1.5",
     [f"{L}/water_se_atten_v2.1.5/reference.npz", f"{L}/water_se_atten_v2.1.5/reference_nopbc.npz"]),
    ("multitask_water_a", f"{L}/multitask/united.pb --head=water_a",
     "2.2.11 (united multi-task graph; reference = per-head graph frozen_model_water_a.pb)",
     [f"{L}/multitask/reference_water_a.npz", f"{L}/multitask/reference_nopbc_water_a.npz"]),
]
KEYS = ["energy", "force", "virial", "atom_energy", "atom_virial"]


def rel(a, b):
    a = np.asarray(a, dtype=np.float64).reshape(b.shape)
    den = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / den) if den > 0 else float(np.max(np.abs(a - b)))


def evaluate(model_path, refs):
    """Return (worst finite rel diff, set of keys that came back NaN)."""
    from deepmd.infer import DeepPot

    dp = DeepPot(model_path)
    print(f"    DeepPot({os.path.basename(model_path)}): {type(dp.deep_eval).__module__}."
          f"{type(dp.deep_eval).__name__}, type_map={dp.get_type_map()}, rcut={dp.get_rcut()}")
    worst, nan_keys = 0.0, set()
    for ref_path in refs:
        r = np.load(os.path.join(ROOT, ref_path), allow_pickle=True)
        pbc = bool(r["pbc"]) if "pbc" in r.files else ("box" in r.files)
        coord = r["coord"]
        nf = coord.shape[0]
        box = r["box"].reshape(nf, 9) if pbc else None
        out = dp.eval(coord.reshape(nf, -1), box, r["atype"].reshape(-1), atomic=True)
        diffs = {k: rel(v, r[k].reshape(nf, -1)) for k, v in zip(KEYS, out)}
        for k, d in diffs.items():
            if np.isnan(d):
                nan_keys.add(k)
            else:
                worst = max(worst, d)
        dae = float(np.max(np.abs(np.asarray(out[3]).reshape(nf, -1) - r["atom_energy"].reshape(nf, -1))))
        print(f"    {os.path.basename(ref_path):30s} pbc={str(pbc):5s} nf={nf} "
              + " ".join(f"{k}={d:.3e}" for k, d in diffs.items()) + f"  (max|d atom_energy|={dae:.3e})")
    if nan_keys:
        print(f"    NOTE: NaN for {sorted(nan_keys)}: this backend returned no value (DeePMD-kit's DPModel"
              " DeepEval fills outputs the model does not compute with NaN)")
    return worst, nan_keys


def convert(src, dst):
    if os.path.exists(dst):
        subprocess.run(["rm", "-rf", dst], check=True)
    cmd = [os.path.join(os.path.dirname(sys.executable), "dp"), "convert-backend", src, dst]
    p = subprocess.run(cmd, capture_output=True, text=True)
    print(f"    $ dp convert-backend {os.path.basename(src)} {os.path.basename(dst)} -> rc={p.returncode}")
    if p.returncode != 0:
        lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
        print("    " + "\n    ".join(lines[-6:]))
    return p.returncode == 0


def attempt(label, path, refs, summary, name):
    print(f"  [{label}] {path}")
    try:
        worst, nan_keys = evaluate(path, refs)
        msg = f"max rel diff over computed keys/refs = {worst:.3e}"
        if nan_keys:
            msg += f"; NaN (not computed): {','.join(k for k in KEYS if k in nan_keys)}"
        summary.append((name, label, msg))
    except Exception as e:  # noqa: BLE001 - record any failure verbatim
        tb = traceback.format_exc().strip().splitlines()
        print("    ERROR: " + "\n    ".join(tb[-8:]))
        summary.append((name, label, f"ERROR {type(e).__name__}: {e}"))


def _set_all(x, key, value):
    if isinstance(x, dict):
        for k in list(x):
            if k == key:
                x[k] = value
            else:
                _set_all(x[k], key, value)
    elif isinstance(x, list):
        for y in x:
            _set_all(y, key, value)


def se_atten_diagnosis(dpdir, name, ref_path):
    """Same weights, two DeePMD-kit 3.x backends: numpy DPModel vs TF (via convert-backend).

    Variants of the dpkeras .dp: attention layers kept/dropped, attn_dotr on/off, temperature None/1.0
    (the TF backend refuses temperature != None, so its side always uses None). Prints max|d atom_energy|
    between the two backends, to locate where DeePMD-kit 3.x's numpy dpa1 and TF se_atten disagree.
    """
    import copy

    from deepmd.dpmodel.utils.serialization import load_dp_model, save_dp_model
    from deepmd.infer import DeepPot

    base = load_dp_model(os.path.join(dpdir, name + ".dp"))
    r = np.load(os.path.join(ROOT, ref_path))
    c, b, t = r["coord"], r["box"], r["atype"]
    work = os.path.join(dpdir, "diag")
    os.makedirs(work, exist_ok=True)
    dpbin = os.path.join(os.path.dirname(sys.executable), "dp")
    print(f"  numpy DPModel vs TF backend on the same weights ({os.path.basename(ref_path)}, PBC):")
    nl0 = base["model"]["descriptor"]["attn_layer"]
    for nl, dotr in [(0, True), (nl0, True), (nl0, False)]:
        d = copy.deepcopy(base)
        de = d["model"]["descriptor"]
        de["attn_layer"] = nl
        de["attention_layers"]["layer_num"] = nl
        de["attention_layers"]["attention_layers"] = de["attention_layers"]["attention_layers"][:nl]
        de["attn_dotr"] = dotr
        _set_all(de["attention_layers"], "dotr", dotr)
        pn, pb = os.path.join(work, f"{name}_n.dp"), os.path.join(work, f"{name}_n.pb")
        save_dp_model(pn, d)
        subprocess.run([dpbin, "convert-backend", pn, pb], capture_output=True, check=True)
        d1 = copy.deepcopy(d)
        d1["model"]["descriptor"]["temperature"] = 1.0
        _set_all(d1["model"]["descriptor"]["attention_layers"], "temperature", 1.0)
        p1 = os.path.join(work, f"{name}_t1.dp")
        save_dp_model(p1, d1)
        e_tf = DeepPot(pb).eval(c, b, t, atomic=True)[3]
        for lab, p in [("temperature=None", pn), ("temperature=1.0", p1)]:
            e_np = DeepPot(p).eval(c, b, t, atomic=True)[3]
            print(f"    attn_layer={nl} attn_dotr={str(dotr):5s} numpy {lab:16s} vs TF(temperature=None):"
                  f" max|d atom_energy| = {float(np.max(np.abs(e_np - e_tf))):.3e}")


def main():
    dpdir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/cf"
    import deepmd

    try:
        import torch  # noqa: F401
        have_torch = True
    except Exception:
        have_torch = False
    print(f"deepmd-kit {deepmd.__version__}, numpy {np.__version__}, torch installed: {have_torch}")
    summary = []
    for name, graph, era, refs in CASES:
        dp_file = os.path.join(dpdir, name + ".dp")
        print(f"\n=== {name}: graph {graph} (era: {era}) -> {dp_file}")
        if not os.path.exists(dp_file):
            print("  missing .dp; skipped")
            summary.append((name, "-", "missing .dp"))
            continue
        attempt("dp (native .dp)", dp_file, refs, summary, name)
        conv_dir = os.path.join(dpdir, "converted")
        os.makedirs(conv_dir, exist_ok=True)
        targets = [("tf (.pb)", ".pb"), ("tf2 (.savedmodeltf)", ".savedmodeltf")]
        if have_torch:
            targets.append(("pt (.pth)", ".pth"))
        for label, suf in targets:
            dst = os.path.join(conv_dir, name + suf)
            print(f"  [{label}]")
            if convert(dp_file, dst):
                attempt(label, dst, refs, summary, name)
            else:
                summary.append((name, label, "convert-backend failed (see above)"))
    print("\n=== se_atten: where DeePMD-kit 3.x's numpy DPModel backend departs from its TF backend")
    for name, graph, era, refs in CASES:
        if "se_atten" in name and os.path.exists(os.path.join(dpdir, name + ".dp")):
            print(f" {name}:")
            try:
                se_atten_diagnosis(dpdir, name, refs[0])
            except Exception:  # noqa: BLE001
                print("    ERROR: " + "\n    ".join(traceback.format_exc().strip().splitlines()[-6:]))
    print("\n=== summary")
    for name, label, msg in summary:
        print(f"  {name:24s} {label:22s} {msg}")


if __name__ == "__main__":
    main()
