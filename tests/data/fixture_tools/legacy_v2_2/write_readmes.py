#!/usr/bin/env python3
"""Write the README.md files of tests/data/legacy_v2_2 (per dir + top level) from the artifacts.

usage: python write_readmes.py        (run by make_all.sh at the end; any python3 with numpy)
Every number in the READMEs is read from the reference files, graph_info*.json and check_log.txt.
"""
import glob
import json
import os

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
OUT = os.path.join(ROOT, "tests/data/legacy_v2_2")
T = "../../fixture_tools/legacy_v2_2"
W3 = "dpkeras/examples/data/water/data_3"
DIPV = "dpkeras/examples/data/water_tensor/dipole/validation_data_reformat/atomic_system"
POLV = "dpkeras/examples/data/water_tensor/polar/validation_data_reformat/atomic_system"
ENV = ("export OMP_NUM_THREADS=1 TF_INTRA_OP_PARALLELISM_THREADS=1 TF_INTER_OP_PARALLELISM_THREADS=1 "
       "TF_ENABLE_ONEDNN_OPTS=0")


def gi(name, f="graph_info.json"):
    return json.load(open(os.path.join(OUT, name, f)))


def const(g, name):
    for c in g["consts"]:
        if c["name"] == name:
            return c
    return None


def files_table(name, extra=None):
    extra = extra or {}
    desc = {
        "input.json": "training input (data paths relative to the repo root; `scratch/...` = made by make_all.sh)",
        "frozen_model.pb": "the frozen graph (`dp freeze`)",
        "lcurve.out": "learning curve",
        "reference.npz": "DeePMD-kit's own evaluation with PBC (box from box.npy), see below",
        "reference_nopbc.npz": "the same frames evaluated with box=None (no PBC)",
        "graph_info.json": "the GraphDef parsed with plain TF (graph_info22.py): op histogram, custom ops + attrs, "
                           "placeholders, outputs, string Consts (training_script decoded), every Const name/dtype/shape "
                           "(values when <= 16 elements)",
        "check_log.txt": "output of the last make_all.sh run for this dir (eval checks)",
        "finetune.log": "DeePMD-kit's fine-tune log (TF noise filtered)",
    }
    desc.update(extra)
    rows = ["| file | bytes | content |", "|---|---|---|"]
    for f in sorted(os.listdir(os.path.join(OUT, name))):
        if f == "README.md":
            continue
        d = desc.get(f)
        if d is None:
            for k, v in desc.items():
                if "*" in k and glob.fnmatch.fnmatch(f, k):
                    d = v
        rows.append(f"| `{f}` | {os.path.getsize(os.path.join(OUT, name, f))} | {d or ''} |")
    return "\n".join(rows)


def npz_keys(path):
    z = np.load(path)
    parts = []
    for k in z.files:
        a = z[k]
        if a.ndim == 0:
            parts.append(f"`{k}` {a.dtype} = {a.item()!r}")
        else:
            parts.append(f"`{k}` {a.dtype}{list(a.shape)}")
    return ", ".join(parts)


def refs_section(name, files):
    lines = ["## Reference files (numbers from DeePMD-kit's evaluation only)", ""]
    for f in files:
        p = os.path.join(OUT, name, f)
        z = np.load(p)
        lines.append(f"* `{f}`: {npz_keys(p)}")
        if "energy" in z.files:
            lines.append(f"  - energy = {z['energy'].ravel().tolist()} eV")
        for t in ("dipole", "polar"):
            if t in z.files:
                lines.append(f"  - {t}[0] = {z[t][0].tolist()}")
    lines.append("")
    return "\n".join(lines)


def custom_ops(g):
    seen, out = set(), []
    for n in g["custom_op_nodes"]:
        if n["name"].startswith("gradients"):
            continue
        key = (n["op"], json.dumps(n["attrs"], sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        out.append(f"`{n['op']}` {n['attrs']} (e.g. node `{n['name']}`)")
    grads = sorted({n["op"] for n in g["custom_op_nodes"] if n["name"].startswith("gradients")})
    s = "Custom (DeePMD-kit) ops: " + ", ".join(g["custom_ops"]) + ".\n" + "\n".join("* " + o for o in out)
    if grads:
        s += "\n* in the gradient subgraph: " + ", ".join(f"`{o}`" for o in grads)
    return s


def attrs_line(g):
    bits = []
    for k in ("descrpt_attr/rcut", "descrpt_attr/ntypes", "descrpt_attr/sel", "fitting_attr/t_bias_atom_e",
              "train_attr/min_nbor_dist", "model_attr/sel_type", "model_attr/output_dim", "nnei"):
        c = const(g, k)
        if c is not None:
            bits.append(f"`{k}` = {c.get('value', c['shape'])}")
    strs = {s["name"]: s["value"] for s in g["string_consts"] if s["name"] != "train_attr/training_script"}
    bits += [f"`{k}` = {v!r}" for k, v in strs.items()]
    return "; ".join(bits)


def weights_list(g, pred=None):
    names = []
    for c in g["consts"]:
        last = c["name"].split("/")[-1]
        if last in ("matrix", "bias", "idt", "gamma", "beta") or last.startswith(("matrix_", "bias_", "idt_")) \
                or c["name"].endswith(("t_avg", "t_std")) or (c["dtype"] == "float64" and len(c["shape"]) == 2
                                                                and c["shape"][0] > 100):
            if pred is None or pred(c["name"]):
                names.append(f"`{c['name']}` {c['shape']}")
    return ", ".join(names)


HEAD = """Made with the **real DeePMD-kit {ver}** ({tf}), float64, type_map ["O", "H"], a tiny test
model (its numbers are DeePMD-kit's, not good physics). Regenerate every legacy fixture with

    bash tests/data/fixture_tools/legacy_v2_2/make_all.sh      # ~9 min on 2 cores; trains in /tmp/legacy22/work

Training is deterministic (fixed seeds, 1 thread): two runs of make_all.sh gave bit-identical reference
files and identical values of every graph Const (the .pb bytes differ in serialisation only). DeePMD-kit is LGPL-3.0-or-later; the data are DeePMD-kit's example data (see ../README.md).
"""
V22 = dict(ver="2.2.11", tf="TensorFlow 2.16.2, Python 3.11, venv from /work/shared/tools/deepmd22-venv.sh")
V215 = dict(ver="2.1.5", tf="TensorFlow 2.10.0, Python 3.10, venv from ../../fixture_tools/legacy_v2_2/deepmd215-venv.sh")

ENER_REF = """`reference.npz` = `DeepPotential("frozen_model.pb").eval(coord, box, atype, atomic=True)` (2.2.11 API,
class DeepPot) on the first 2 frames of `water/data_3` (192 atoms: 64 O + 128 H in type.raw order,
O H H O H H ...; coord/box cast to float64); `reference_nopbc.npz` = the same coordinates with box=None.
energy [nf,1], force [nf, natoms*3], virial [nf,9], atom_energy [nf, natoms], atom_virial [nf, natoms*9];
`descriptor` = `DeepPot.eval_descriptor` [nf, natoms, dim] (atoms in input order) where stored.
`atype` is in the model's type indexing (O=0, H=1); `pbc` tells which case. Checks in check_log.txt:
Σ atom_energy = energy (~4e-12), Σ atom_virial = virial, Σ force ≈ 0, finite-difference forces (~1e-8).
"""


def cmds(*lines):
    return "    " + ENV + "\n" + "\n".join("    " + ln for ln in lines) + "\n"


STD_EVAL = (f"python {T}/eval22.py frozen_model.pb {W3} 2 reference.npz --nopbc reference_nopbc.npz",
            f"python {T}/graph_info22.py frozen_model.pb graph_info.json")


def write(name, title, body):
    with open(os.path.join(OUT, name, "README.md"), "w") as fh:
        fh.write(f"# {name}: {title}\n\n" + body.rstrip() + "\n")
    print("wrote", name)


def energy_dir(name, title, model_txt, names_txt, ver=V22, extra_cmds=None, ref_note="", files_extra=None):
    g = gi(name)
    c = extra_cmds or ("dp train input.json                  # data paths made absolute", "dp freeze -o frozen_model.pb") + STD_EVAL
    body = HEAD.format(**ver) + "\nCommands (in the scratch dir, DeePMD-kit venv's `dp`/`python`):\n\n" + cmds(*c) + "\n"
    body += "## Model\n\n" + model_txt.strip() + "\n\n## Files\n\n" + files_table(name, files_extra) + "\n\n"
    body += ENER_REF + ref_note + "\n" + refs_section(name, ["reference.npz", "reference_nopbc.npz"])
    body += "## Graph (from graph_info.json)\n\n" + custom_ops(g) + "\n\nAttributes: " + attrs_line(g) + "\n\n"
    body += names_txt.strip() + "\n\nWeight Consts: " + weights_list(g) + "\n"
    write(name, title, body)


FIT = ("Fitting `ener`, neuron [16, 16], resnet_dt true, tanh: `layer_0_type_{t}/matrix|bias`, "
       "`layer_1_type_{t}/matrix|bias|idt` (idt is 1-D [16]), `final_layer_type_{t}/matrix|bias`; the atomic energy is "
       "the net output **plus `fitting_attr/t_bias_atom_e[t]`** (no `model_attr/t_out_bias`/`t_out_std` Consts in "
       "2.2.x graphs, unlike 3.2.0).")
TRAIN = "Training: 20 steps on water/data_0 (batch 1), lr exp 5e-3 → 5e-4 (decay_steps 10), ener loss, seed 10; validation data_3."
SEA = ("`se_e2_a`, sel [23, 46], rcut 4.0, rcut_smth 0.5, neuron [4, 8, 16], axis_neuron 4, resnet_dt false, "
       "type_one_side false, tanh")

energy_dir("water_se_e2_a", "se_e2_a (DeePMD-kit 2.2.11)", f"Descriptor {SEA}. {FIT} {TRAIN}",
           "Names: embedding nets `filter_type_{c}/matrix_{l}_{k}`, `bias_{l}_{k}` (c = centre type, k = neighbour type, "
           "l = 1..3); `descrpt_attr/t_avg|t_std` [2, 276] (= sel_sum·4); outputs `o_energy`, `o_force`, `o_virial`, "
           "`o_atom_energy`, `o_atom_virial`, `o_descriptor`, `o_rmat`, `o_rmat_deriv`, `o_rij`, `o_nlist`.")
energy_dir("water_se_e2_r", "se_e2_r (DeePMD-kit 2.2.11)",
           f"Descriptor `se_e2_r`, sel [23, 46], rcut 4.0, rcut_smth 0.5, neuron [4, 8, 16], resnet_dt false, "
           f"type_one_side false, tanh (descriptor dim = 16). {FIT} {TRAIN}",
           "Names: `filter_type_{c}/matrix_{l}_{k}` (4 nets), `descrpt_attr/t_avg|t_std` [2, 69] (one value per slot); "
           "no `descrpt_attr/sel` Const in this graph (the sel is in the ProdEnvMatR attrs).")
energy_dir("water_se_e3", "se_e3 (se_t) (DeePMD-kit 2.2.11)",
           f"Descriptor `se_e3`, sel [12, 24], **rcut 3.0**, rcut_smth 0.5, neuron [4, 8, 16], resnet_dt false, tanh "
           f"(descriptor dim = 16). {FIT} {TRAIN}",
           "Names: embedding nets `filter_type_all/matrix_{l}_{t1}_{t2}`, `bias_{l}_{t1}_{t2}` for the pairs "
           "(0,0), (0,1), (1,1) only (t1 ≤ t2); `descrpt_attr/t_avg|t_std` [2, 144] (= 36·4). Uses ProdEnvMatA (no own op).")
energy_dir("water_se_atten", "se_atten (DPA-1) (DeePMD-kit 2.2.11)",
           "Descriptor `se_atten`, sel 60, rcut 4.0, rcut_smth 0.5, neuron [4, 8, 16], axis_neuron 4, attn 16, attn_layer 2, "
           "attn_dotr true, attn_mask false, resnet_dt false; 2.2.11 defaults recorded in the training script: "
           "`set_davg_zero` **true** (t_avg is all 0), `stripped_type_embedding` false, `smooth_type_embedding` false, "
           "type_one_side false. Type embedding neuron [8], resnet_dt false, tanh. Fitting `ener` [16, 16] resnet_dt "
           "true, with the type embedding concatenated to the descriptor (layer_0 input 64 + 8 = 72). " + TRAIN,
           "Names: `type_embed_net/matrix_1` [2, 8] **and `type_embed_net/bias_1` [8]** (3.2.0 graphs have no bias); "
           "embedding `filter_type_all/matrix_{l}|bias_{l}` (matrix_1 [17, 4]: 1 + 2·8 inputs, s(r) + type "
           "embeddings of centre and neighbour); attention `attention_layer_{i}/c_query|c_key|c_value|c_out/matrix|bias`, "
           "layer norms **`attention_layer_0/layer_normalization/gamma|beta` and `attention_layer_1/layer_normalization_1/"
           "gamma|beta`** (the 2nd layer's scope gets the `_1` suffix; 3.2.0 writes `layer_normalization` in both), built "
           "from `moments` + `batchnorm` ops with epsilon `.../batchnorm/add/y` = 0.001; fitting without type suffix: "
           "`layer_0/matrix` [72, 16], `layer_1/*`, `final_layer/*`.")
energy_dir("water_hybrid", "hybrid se_e2_a + se_e2_r (DeePMD-kit 2.2.11)",
           f"Descriptor `hybrid` of [{SEA}] and [`se_e2_r`, same sel/rcut/neuron, type_one_side false] "
           f"(dim 64 + 16 = 80). {FIT} {TRAIN}",
           "Names: the sub-descriptor index is a suffix: `descrpt_attr_0/t_avg|t_std|sel|original_sel` (se_e2_a), "
           "`descrpt_attr_1/t_avg|t_std` [2, 69] (se_e2_r), embedding nets `filter_type_{c}_{i}/matrix_{l}_{k}` "
           "(i = 0 se_e2_a, 1 se_e2_r); top-level `descrpt_attr/rcut|ntypes`; fitting layer_0 input 80.")

# ---- tensor models
TENSOR_REF = """`reference.npz` = DeePMD-kit 2.2.11 `DeepPotential(pb)` (class Deep{Kind}) on the first 2 frames of
`{sysname}` (192 atoms, 64 O; the water_tensor systems) with the box from box.npy; `reference_nopbc.npz`: box=None.{pbcnote}
* `{k}` [nf, {n}] = `eval(..., atomic=False)` (global);
* `atom_{k}` = `eval(..., atomic=True)` exactly as 2.2.11 returns it: **[nf, n_sel_atoms, {n}] = [2, 64, {n}]**, one row
  per atom whose type is in sel_type [0] (O), in input atom order; `sel_atom_index` [64] gives those atoms' indices
  (3.x returns [nf, natoms, {n}] instead, per deepmd22-venv.sh's header);
* from `eval_full(..., atomic=True)`: `{k}_force` [nf, {n}, natoms, 3], `{k}_virial` [nf, {n}, 9]{av};
* `sel_type` [1] = [0]. 2.2.11's DeepDipole/DeepPolar have no `eval_descriptor` (no descriptor stored).
Checks (check_log.txt): Σ atomic = global (0.0), eval_full = eval, Σ {k}_atom_virial = {k}_virial, finite differences.
"""


def tensor_dir(name, kind, n, sysname, model_txt, names_txt, av_in_nopbc=True, pbcnote=""):
    g = gi(name)
    K = kind.capitalize()
    c = ("dp train input.json", "dp freeze -o frozen_model.pb",
         f"python {T}/eval22.py frozen_model.pb {sysname} 2 reference.npz --nopbc reference_nopbc.npz"
         + ("" if av_in_nopbc else " --lite-nopbc"),
         f"python {T}/graph_info22.py frozen_model.pb graph_info.json")
    body = HEAD.format(**V22) + "\nCommands (in the scratch dir):\n\n" + cmds(*c) + "\n"
    body += "## Model\n\n" + model_txt.strip() + "\n\n## Files\n\n" + files_table(name) + "\n\n"
    av = f", `{kind}_atom_virial` [nf, {n}, natoms, 9]" + ("" if av_in_nopbc else " (reference.npz only)")
    body += TENSOR_REF.format(Kind=K, sysname=sysname, k=kind, n=n, av=av, pbcnote=pbcnote) + "\n"
    body += refs_section(name, ["reference.npz", "reference_nopbc.npz"])
    body += "## Graph (from graph_info.json)\n\n" + custom_ops(g) + "\n\nAttributes: " + attrs_line(g) + "\n\n"
    body += names_txt.strip() + "\n\nWeight Consts: " + weights_list(g) + "\n"
    write(name, f"{kind} fitting on se_e2_a (DeePMD-kit 2.2.11)", body)


DATA_NOTE = ("Training data: `scratch/water_tensor/{k}/training_atomic_sel0` = the shared "
             "`water_tensor/{k}/training_data_reformat/atomic_system` with its atomic label reduced to the O rows "
             "(`make_tensor_data.py ... 0`: 2.2.11 wants `{lab}.npy` as [nf, n_sel·{n}], the shared file has all atoms), "
             "plus `training_data_reformat/global_system` ({glob}.npy) verbatim; validation the same reduction of "
             "validation_data_reformat/atomic_system. Loss `tensor`, pref 1, pref_atomic 1. 20 steps, lr 5e-3 → 5e-4.")
tensor_dir("water_dipole", "dipole", 3, DIPV,
           f"Descriptor {SEA}. Fitting `dipole`, sel_type [0], neuron [16, 16], resnet_dt true, tanh "
           "(per-O output of size 16 = descriptor neuron[-1], contracted with the [16, 3] rotation matrix `o_rot_mat` → 3-vector). "
           + DATA_NOTE.format(k="dipole", lab="atomic_dipole", n=3, glob="dipole"),
           "Names: fitting nets only for the sel types: `layer_0_type_0/*` [64, 16], `layer_1_type_0/*` (+ idt), "
           "`final_layer_type_0/matrix` [16, 16] (a 16-vector per O, multiplied with `o_rot_mat` [16, 3]); no "
           "`fitting_attr/*`; `model_attr/sel_type` [0], `model_attr/output_dim` 3; outputs `o_dipole` (atomic), "
           "`o_global_dipole`, `o_force`/`o_virial`/`o_atom_virial` (3 gradient blocks concatenated), `o_rot_mat`.",
           pbcnote=" The dipole systems carry a `nopbc` marker, so DeePMD-kit TRAINED them without PBC; "
           "reference.npz nevertheless passes their box (periodic evaluation), reference_nopbc.npz is the non-periodic one.")
tensor_dir("water_polar", "polar", 9, POLV,
           f"Descriptor {SEA}. Fitting `polar`, sel_type [0], neuron [16, 16], resnet_dt true, tanh, 2.2.11 defaults "
           "fit_diag true, scale 1.0, shift_diag true. " + DATA_NOTE.format(k="polar", lab="atomic_polarizability", n=9, glob="polarizability"),
           "Names: `layer_0_type_0/*`, `layer_1_type_0/*`, `final_layer_type_0/matrix` [16, 16] (fit_diag: a diagonal of "
           "16 entries, then R^T diag R with the [16, 3] rotation matrix); no `fitting_attr/*`; the shift_diag constant is an anonymous scalar Const `mul_8/x` = "
           f"{const(gi('water_polar'), 'mul_8/x')['value']} (constant_matrix of O) and the scale `mul_7/y` = 1.0; "
           "`model_attr/output_dim` 9. The graph is large (~1 MB) because eval_full's 9 gradient blocks are in it.",
           av_in_nopbc=False)

# ---- finetune
pre = np.load(os.path.join(OUT, "water_se_atten/reference.npz"))
ft = np.load(os.path.join(OUT, "finetune_se_atten/reference.npz"))
gp, gf = gi("water_se_atten"), gi("finetune_se_atten")
bp, bf = np.array(const(gp, "fitting_attr/t_bias_atom_e")["value"]), np.array(const(gf, "fitting_attr/t_bias_atom_e")["value"])
cnt = np.bincount(ft["atype"], minlength=2)
shift = (ft["energy"] - pre["energy"]).ravel()
pred = float((bf - bp) @ cnt)
ae_shift = ft["atom_energy"] - pre["atom_energy"]
body = HEAD.format(**V22) + f"""
Fine-tune of `../water_se_atten/frozen_model.pb` (2.2.11 `--finetune` supports only se_atten/se_atten_v2 + ener).
Commands (in the scratch dir):

""" + cmds("cp ../water_se_atten/frozen_model.pb pretrained.pb",
           "dp train input.json --finetune pretrained.pb     # input.json: descriptor {}, fitting_net {}, 0 steps, data_1",
           "dp freeze -o frozen_model.pb", *STD_EVAL) + f"""
## What DeePMD-kit did (finetune.log)

* replaced the empty descriptor / fitting_net / type_embedding of input.json by the pretrained ones
  ("Change the 'descriptor' from {{}} to {{...}}");
* "Changing energy bias in pretrained model for types ['O', 'H']": least-squares on water/data_1 of the
  pretrained model's energy error → `fitting_attr/t_bias_atom_e` {bp.tolist()} → {bf.tolist()};
* 0 training steps: every other float Const of the graph is bit-identical to the pretrained one except
  `train_attr/min_nbor_dist` (recomputed on data_1) — `final_layer/bias` is unchanged, so the bias change acts
  only through `t_bias_atom_e`, which the 2.2.x graph adds to the atomic energy;
* the frozen graph gains an int32 Const `nnei` = {const(gf, 'nnei')['value']} and loses the Const `truediv/y`
  (otherwise the same node names as the pretrained graph).

Check: E(finetuned) − E(pretrained) on the reference frames = {shift.tolist()} eV; Σ_types Δbias·count =
{pred!r} eV; atom_energy shift per atom = Δbias of its type (max deviation {float(np.abs(ae_shift - (bf - bp)[ft['atype']][None]).max()):.1e}).

## Files

""" + files_table("finetune_se_atten", {"input.json": "the user's fine-tune input (`dp train input.json --finetune pretrained.pb`)"}) + "\n\n" + ENER_REF + "\n" + refs_section("finetune_se_atten", ["reference.npz", "reference_nopbc.npz"]) + \
    "## Graph (from graph_info.json)\n\n" + custom_ops(gf) + "\n\nAttributes: " + attrs_line(gf) + \
    "\n\nSame names as ../water_se_atten (see its README).\n"
write("finetune_se_atten", "fine-tuned se_atten graph (DeePMD-kit 2.2.11 `dp train --finetune`)", body)

# ---- compressed
for src, op in (("se_e2_a", "TabulateFusionSeA"), ("se_e2_r", "TabulateFusionSeR")):
    name = f"compressed_{src}"
    g = gi(name)
    tabs = [c for c in g["consts"] if c["dtype"] == "float64" and len(c["shape"]) == 2 and c["shape"][0] > 100]
    infos = [c for c in g["consts"] if c["name"].endswith("table_info")]
    log = open(os.path.join(OUT, name, "check_log.txt")).read().splitlines()
    cmp_lines = [ln for ln in log if "compressed - uncompressed" in ln or "boundary" in ln]
    opnodes = [n for n in g["custom_op_nodes"] if n["op"] == op]
    body = HEAD.format(**V22) + f"""
`dp compress` of `../water_{src}/frozen_model.pb` (same training input, copied here as input.json).

""" + cmds(f"cp ../water_{src}/frozen_model.pb model.pb     # its training script points at the training data, which must exist",
           "dp compress -i model.pb -o frozen_model.pb -s 0.04", *STD_EVAL[:1]).rstrip() + " --lite-nopbc\n" + \
        f"    python {T}/graph_info22.py frozen_model.pb graph_info.json\n" + f"""
**Stride 0.04, not the default 0.01**: with -s 0.01 (extrapolate 5, the default) the graph was 3.4 MB
(tables of 940 and 1220 rows × 96 for the O- and H-centred nets); -s 0.04 (second-level stride 10× = 0.4)
gives {os.path.getsize(os.path.join(OUT, name, 'frozen_model.pb'))} bytes. The training script in the graph
records it: `model.compress` = {json.dumps([s for s in g['string_consts'] if s['name'] == 'train_attr/training_script'][0]['value']['model']['compress'])}.

Compressed vs uncompressed (../water_{src}/reference*.npz), from check_log.txt:
""" + "\n".join(f"    {ln}" for ln in cmp_lines) + f"""

## Tables (graph_info.json)

The embedding nets' matrices/biases are gone from the graph; each (centre c, neighbour k) net is replaced by a
`{op}` node whose inputs are an **anonymous table Const** and a `table_info` Const:

""" + "\n".join(f"* `{n['name']}`: inputs {n['inputs']}, attrs {n['attrs']}" for n in opnodes) + "\n\n" + \
        "\n".join(f"* `{c['name']}` {c['dtype']}{c['shape']}" + (f" = {c['value']}" if 'value' in c else "") for c in tabs + infos) + f"""

table_info = [lower, upper, upper·extrapolate, stride0, stride1, check_frequency(-1)]: rows = (upper−lower)/stride0 +
(upper·extrapolate − upper)/stride1 (e.g. 7/0.04 + 24/0.4 = 235); column 6·j + p holds coefficient p (p = 0..5) of the
quintic polynomial of output channel j (j < last_layer_size = 16), as written by 2.2.11's `deepmd/utils/tabulate.py`
(`data[net][:, p::6]`). lower/upper are floor/ceil of the env-matrix range found in the data ("training data with
lower/upper boundary" above), per centre type.

## Files

""" + files_table(name, {"frozen_model.pb": "the compressed graph (`dp compress` output)",
                                "input.json": f"= ../water_{src}/input.json (the training input of the source graph)"}) + "\n\n" + ENER_REF + "(reference_nopbc.npz without descriptor, to keep the dir small.)\n\n" + \
        refs_section(name, ["reference.npz", "reference_nopbc.npz"]) + "## Graph\n\n" + custom_ops(g) + \
        "\n\nAttributes: " + attrs_line(g) + "\n"
    write(name, f"compressed {src} graph (DeePMD-kit 2.2.11 `dp compress`)", body)

# ---- v2.1.5
for src in ("water_se_e2_a", "water_se_atten"):
    name = f"{src}_v2.1.5"
    g = gi(name)
    g22 = gi(src)
    n21 = {c["name"] for c in g["consts"]}
    n22 = {c["name"] for c in g22["consts"]}
    wn = lambda s: {x for x in s if x.split("/")[-1] in ("matrix", "bias", "idt", "gamma", "beta") or
                    x.split("/")[-1].startswith(("matrix_", "bias_")) or "_attr" in x and "strided" not in x}
    ops21, ops22 = set(g["op_histogram"]), set(g22["op_histogram"])
    t_avg = "set_davg_zero default false in 2.1.5 (t_avg non-zero), true in 2.2.11" if src == "water_se_atten" else ""
    body = HEAD.format(**V215) + f"""
Same training input as ../{src} (input.json identical), trained and frozen by **DeePMD-kit 2.1.5**, evaluated by
2.1.5's own `deepmd.infer.DeepPotential` (eval22.py runs unchanged on 2.1.5). 2.1.x cannot be installed on Python
3.11 (see ../README.md); the PyPI cp310 wheel built against TF 2.10.0 works.

""" + cmds("dp train input.json", "dp freeze -o frozen_model.pb", *STD_EVAL).rstrip() + \
        "      # graph_info22.py run with the 2.2.11 venv's TF\n" + f"""
Compared with the 2.2.11 graph of ../{src} (same input): weight/attribute Const names only in 2.1.5:
{sorted(wn(n21) - wn(n22))}; only in 2.2.11: {sorted(wn(n22) - wn(n21))}; op types only in 2.1.5:
{sorted(ops21 - ops22)}, only in 2.2.11: {sorted(ops22 - ops21)}. {t_avg}
(The numbers differ from the 2.2.11 model: a different training run.)

## Files

""" + files_table(name) + "\n\n" + ENER_REF.replace("2.2.11 API", "2.1.5 API") + "\n" + \
        refs_section(name, ["reference.npz", "reference_nopbc.npz"]) + "## Graph (from graph_info.json)\n\n" + \
        custom_ops(g) + "\n\nAttributes: " + attrs_line(g) + "\n\nWeight Consts: " + weights_list(g) + "\n"
    write(name, f"{'se_e2_a' if 'e2_a' in src else 'se_atten'} made with DeePMD-kit 2.1.5", body)

# ---- multitask
name = "multitask"
gu = gi(name, "graph_info_united.json")
heads = {h: gi(name, f"graph_info_{h}.json") for h in ("water_a", "water_b", "water_dipole")}
log = open(os.path.join(OUT, name, "check_log.txt")).read().splitlines()
pick = [ln for ln in log if ln.startswith(("shared descriptor", "water_a vs", "water_a:", "water_b:", "water_dipole:",
                                           "RuntimeError", "DeepPotential("))]
ua = {c["name"]: c for c in gu["consts"]}
body = HEAD.format(**V22) + f"""
A DeePMD-kit **v2 (TensorFlow) multi-task** model: one shared descriptor ({SEA}) and three heads in
`fitting_net_dict`: `water_a` and `water_b` (ener, neuron [16, 16], resnet_dt true) whose two hidden layers are
SHARED via `layer_name` (`water_a`: ["l0", "l1", "out_a"], `water_b`: ["l0", "l1", "out_b"] — 2.2.11's input
check rejects `null` entries although the docs show them, so "not shared" is spelled as a unique string), and
`water_dipole` (dipole, sel_type [0], neuron [16, 16], resnet_dt true; a head named plain "dipole" cannot be frozen
in 2.2.11, per deepmd22-venv.sh's header). `loss_dict`: ener, ener, tensor (pref 1, pref_atomic 1); `data_dict`: water_a ← water/data_0, water_b ←
water/data_1, water_dipole ← the O-only reduced dipole atomic system + global system (as ../water_dipole);
`fitting_weight` 1/1/1; 30 steps, lr 5e-3 → 5e-4, seed 10. lcurve.out has one line per head per step.

    {ENV}
    dp train input.json --skip-neighbor-stat     # needed per deepmd22-venv.sh's header (neighbour stat crashes)
    dp freeze -o frozen_model.pb                 # writes frozen_model_water_a.pb, _water_b.pb, _water_dipole.pb
    dp freeze --united-model -o united.pb
    python {T}/eval22.py frozen_model_water_a.pb {W3} 2 reference_water_a.npz --nopbc reference_nopbc_water_a.npz --lite-nopbc --desc-frames 1
    python {T}/eval22.py frozen_model_water_b.pb {W3} 2 reference_water_b.npz --nopbc reference_nopbc_water_b.npz --lite-nopbc --no-descriptor
    python {T}/eval22.py frozen_model_water_dipole.pb {DIPV} 2 reference_water_dipole.npz --nopbc reference_nopbc_water_dipole.npz --no-tensor-atom-virial
    python {T}/graph_info22.py <each .pb> graph_info_<head|united>.json
    python {T}/check_united.py united.pb water_a=frozen_model_water_a.pb water_b=frozen_model_water_b.pb water_dipole=frozen_model_water_dipole.pb

**The united graph cannot be evaluated by DeePMD-kit**: `DeepPotential("united.pb")` raises
`RuntimeError: unknown model type multi_task` (its `model_attr/model_type` is "multi_task"). Its reference
numbers are those of the per-head graphs: check_united.py shows every weight/attribute Const of each per-head
graph is present, bit-identical, in united.pb (log below), so evaluating head H of united.pb must reproduce
reference_H.npz. (No `train_attr/min_nbor_dist` in these graphs: --skip-neighbor-stat.)

From check_log.txt:

""" + "\n".join("    " + ln for ln in pick) + f"""

## Naming in united.pb (graph_info_united.json)

* descriptor: as a single-task se_e2_a graph (`filter_type_{{c}}/matrix_{{l}}_{{k}}`, `descrpt_attr/*`), once;
* shared layers (layer_name): scope **`share_<name>_type_<t>`** with NO head suffix, stored ONCE for both heads:
  `share_l0_type_{{t}}/matrix` {ua['share_l0_type_0/matrix']['shape']}, `/bias`; `share_l1_type_{{t}}/matrix|bias|idt`;
  the head-specific output layers `share_out_a_type_{{t}}/*`, `share_out_b_type_{{t}}/*` {ua['share_out_a_type_0/matrix']['shape']};
  the second use of a shared layer only adds op scopes `share_l0_type_0_1/...` (a Reshape shape Const, no weights);
* layers of a head without layer_name get the head as suffix: `layer_{{m}}_type_{{t}}_water_dipole/*`,
  `final_layer_type_{{t}}_water_dipole/*`;
* per-head attributes: `fitting_attr_water_a/t_bias_atom_e` = {ua['fitting_attr_water_a/t_bias_atom_e']['value']},
  `fitting_attr_water_b/t_bias_atom_e` = {ua['fitting_attr_water_b/t_bias_atom_e']['value']}, `fitting_attr_<head>/dfparam|daparam`;
  `model_attr/sel_type_water_dipole` = {ua['model_attr/sel_type_water_dipole']['value']}, `model_attr/output_dim_water_dipole` = 3;
* outputs: {', '.join('`' + o['name'] + '`' for o in gu['output_nodes'])};
* strings: {[(s['name'], s['value']) for s in gu['string_consts'] if s['name'] != 'train_attr/training_script']};
  `train_attr/training_script` keeps fitting_net_dict / loss_dict / data_dict / fitting_weight.

## Per-head graphs (frozen_model_<head>.pb)

`dp freeze` (no --united-model) writes one ordinary single-task graph per head: the head suffix is removed
(`layer_0_type_0_water_dipole` → `layer_0_type_0`, `fitting_attr_water_a/` → `fitting_attr/`, `o_energy_water_a` →
`o_energy`, `model_attr/sel_type_water_dipole` → `model_attr/sel_type`), `model_attr/model_type` becomes the head's
type ("ener" / "dipole"), the training script is rewritten to single-task form (fitting_net = the head's, loss,
training_data), and **the `share_*` names stay** (`share_l0_type_0/matrix` etc. in both water_a and water_b graphs,
identical values). Outputs: water_a/water_b {[o['name'] for o in heads['water_a']['output_nodes']]}; water_dipole
{[o['name'] for o in heads['water_dipole']['output_nodes']]}.

## Files

""" + files_table(name, {"frozen_model_water_*.pb": "per-head graph (`dp freeze -o frozen_model.pb`)",
                         "united.pb": "all heads in one graph (`dp freeze --united-model`)",
                         "graph_info_*.json": "graph_info22.py of the graph of that name",
                         "reference_water_*.npz": "DeePMD-kit evaluation of that head's graph, PBC",
                         "reference_nopbc_water_*.npz": "the same, box=None"}) + """

Energy heads: as ENER fixtures (first 2 frames of water/data_3; keys below). The dipole head: as ../water_dipole
(validation atomic system of water_tensor/dipole, `atom_dipole` [nf, n_sel=64, 3], `sel_atom_index`), without
`dipole_atom_virial`. Size options (4 graphs in this dir): descriptor only in reference_water_a.npz (frame 0; the
water_b descriptor is identical, checked), no descriptor in the nopbc files.

""" + refs_section(name, ["reference_water_a.npz", "reference_nopbc_water_a.npz", "reference_water_b.npz",
                          "reference_nopbc_water_b.npz", "reference_water_dipole.npz", "reference_nopbc_water_dipole.npz"]) + \
    "## Custom ops (united.pb)\n\n" + custom_ops(gu) + "\n"
write(name, "v2 multi-task model: shared descriptor, layer-shared ener heads + dipole head (DeePMD-kit 2.2.11)", body)

# ---- top-level README
rows = [
 ("water_se_e2_a", "2.2.11", "se_e2_a sel [23,46] rcut 4.0, neuron [4,8,16], axis 4; ener [16,16] resnet_dt; 20 steps data_0", "`filter_type_{c}/matrix_{l}_{k}`, `layer_{m}_type_{t}`, `fitting_attr/t_bias_atom_e` added to atomic energy; no `model_attr/t_out_bias`"),
 ("water_se_e2_r", "2.2.11", "se_e2_r, same sizes", "ProdEnvMatR/ProdForceSeR/ProdVirialSeR; t_avg [2,69]"),
 ("water_se_e3", "2.2.11", "se_e3 rcut 3.0 sel [12,24], neuron [4,8,16]", "`filter_type_all/matrix_{l}_{t1}_{t2}` for t1 ≤ t2"),
 ("water_se_atten", "2.2.11", "se_atten sel 60, attn 16, attn_layer 2, tebd [8]; set_davg_zero true (2.2.11 default)", "`attention_layer_1/layer_normalization_1/*`, `type_embed_net/bias_1`, LN eps 0.001 (`batchnorm/add/y`)"),
 ("water_hybrid", "2.2.11", "hybrid [se_e2_a, se_e2_r]", "`descrpt_attr_{i}/*`, `filter_type_{c}_{i}/matrix_{l}_{k}`"),
 ("water_dipole", "2.2.11", "se_e2_a + dipole sel_type [0], water_tensor/dipole", "`atom_dipole` [nf, n_sel, 3]; `model_attr/sel_type`, `output_dim`; `o_dipole`, `o_global_dipole`"),
 ("water_polar", "2.2.11", "se_e2_a + polar sel_type [0] (fit_diag, shift_diag), water_tensor/polar", "`atom_polar` [nf, n_sel, 9]; shift_diag constant = anonymous `mul_8/x`"),
 ("finetune_se_atten", "2.2.11", "`dp train --finetune` of water_se_atten's graph, 0 steps, data_1", "only `fitting_attr/t_bias_atom_e` (+min_nbor_dist) change; extra Const `nnei`"),
 ("multitask", "2.2.11", "v2 multi-task: shared se_e2_a, heads water_a/water_b (ener, layer_name-shared hidden layers) + water_dipole; per-head graphs + `united.pb`", "`share_<name>_type_<t>/*` (no head suffix), `layer_*_type_*_<head>`, `fitting_attr_<head>/*`, `o_energy_<head>`, `model_attr/model_type` \"multi_task\""),
 ("compressed_se_e2_a", "2.2.11", "`dp compress -s 0.04` of water_se_e2_a", "`TabulateFusionSeA`; anonymous table Consts `Const`, `Const_1..3` [235|305, 96]; `.../table_info` [6]"),
 ("compressed_se_e2_r", "2.2.11", "`dp compress -s 0.04` of water_se_e2_r", "`TabulateFusionSeR`; same table layout"),
 ("water_se_e2_a_v2.1.5", "2.1.5", "input of water_se_e2_a, trained by 2.1.5", "same weight names as 2.2.11"),
 ("water_se_atten_v2.1.5", "2.1.5", "input of water_se_atten, trained by 2.1.5 (set_davg_zero default false)", "same names as 2.2.11 (incl. `layer_normalization_1`, `type_embed_net/bias_1`)"),
]
def size(d):
    return sum(os.path.getsize(os.path.join(OUT, d, f)) for f in os.listdir(os.path.join(OUT, d)))
tab = ["| dir | DeePMD-kit | model | notable graph names | bytes |", "|---|---|---|---|---|"]
for d, v, m, n in rows:
    tab.append(f"| [`{d}/`]({d}/README.md) | {v} | {m} | {n} | {size(d)} |")
attrib = [ln for ln in open(os.path.join(ROOT, "dpkeras/examples/data/README.md")).read().split("\n\n") if ln.startswith("Origin:")][0]
text = f"""# Legacy DeePMD-kit graphs: 2.2.11 (and 2.1.5) ground truth

Frozen TensorFlow graphs made by the **real DeePMD-kit 2.2.11** (TF 2.16.2, Python 3.11) — the last release
whose TF backend trains v2 multi-task models and writes `dp freeze --united-model` graphs — plus two graphs
made by **DeePMD-kit 2.1.5** (TF 2.10.0, Python 3.10). Every number in the `reference*.npz` files was produced
by DeePMD-kit's own `deepmd.infer` evaluation of the graph next to it (nothing computed by dpkeras). All models
are tiny (embedding [4, 8, 16], fitting [16, 16]) and trained 20-30 steps: test fixtures, not potentials.

Regenerate everything (≈ 9 min on 2 cores; scratch dir /tmp/legacy22/work):

    bash /work/shared/tools/deepmd22-venv.sh /root/.cache/dpkeras-deepmd22-venv
    bash tests/data/fixture_tools/legacy_v2_2/deepmd215-venv.sh /root/.cache/dpkeras-deepmd215-venv   # optional, *_v2.1.5
    bash tests/data/fixture_tools/legacy_v2_2/make_all.sh

Recipe files (`../fixture_tools/legacy_v2_2/`): `make_all.sh` (the driver), `make_inputs.py` (writes every
`input.json`), `make_tensor_data.py` (reduces the water_tensor atomic labels to the sel_type atoms, the layout
2.2.11 reads), `eval22.py` (reference files via `deepmd.infer.DeepPotential`), `graph_info22.py` (graph_info*.json
by parsing the GraphDef with plain TF), `check_united.py` (per-head vs united graph weights), `deepmd215-venv.sh`,
`write_readmes.py` (these READMEs; every number in them is read from the artifacts).
Two runs of make_all.sh gave bit-identical reference files and identical values of every graph Const (the .pb
bytes differ in serialisation only; fixed seeds, 1 thread).

{chr(10).join(tab)}

## Conventions

* Every dir: `input.json` (data paths relative to the repo root; `scratch/...` paths are made by make_all.sh),
  the graph (`frozen_model.pb`, or `frozen_model_<head>.pb` + `united.pb`), `reference.npz` (PBC) and
  `reference_nopbc.npz` (same coordinates, box=None; per head: `reference_<head>.npz`, `reference_nopbc_<head>.npz`),
  `graph_info*.json`, `check_log.txt` (the evaluation's self-checks), `README.md` (model, exact commands, keys, names).
* Energy models: first 2 frames of `water/data_3` (192 atoms); keys coord [nf, 576], box [nf, 9] (PBC file only),
  atype [192] (model indexing, O=0 H=1), type_map, pbc, energy [nf, 1], force [nf, 576], virial [nf, 9],
  atom_energy [nf, 192], atom_virial [nf, 1728], descriptor [nf, 192, dim] (where stored), model_type, dp_version.
* Tensor models: first 2 frames of the water_tensor *validation* atomic systems (held out from training);
  T [nf, 3|9] global, `atom_T` **[nf, n_sel_atoms = 64, 3|9]** (2.2.11's layout: sel_type atoms only, input order;
  `sel_atom_index` lists them), T_force [nf, nout, 192, 3], T_virial [nf, nout, 9], T_atom_virial [nf, nout, 192, 9].
* The united multi-task graph cannot be evaluated by DeePMD-kit 2.2.11 (`RuntimeError: unknown model type
  multi_task`); its heads' numbers are the per-head references (the per-head graphs' weights are bit-identical
  Consts of united.pb, checked by check_united.py).

## 2.2.11 quirks met while making these (see the dirs' READMEs)

* multi-task `dp train` needs `--skip-neighbor-stat`; `layer_name` entries must be strings (null rejected);
  a head named "dipole" cannot be frozen; `dp freeze` writes one `frozen_model_<head>.pb` per head;
* dipole/polar training data want the atomic label for the sel_type atoms only ([nf, n_sel·3|9]);
* DeepDipole/DeepPolar have no `eval_descriptor`; eval_descriptor of float64 se_atten graphs needs
  `TF_ENABLE_ONEDNN_OPTS=0` (set by make_all.sh);
* `dp compress` with the default stride 0.01 gave 3.4 MB graphs here; stride 0.04 is used (≈ 0.9 MB);
* sizes: dirs are < 1.4 MB except multitask/ (≈ 2 MB: four graphs; the polar/dipole graphs are large because
  eval_full's per-component gradient blocks are in the graph);
* `--finetune` only accepts se_atten/se_atten_v2 + ener graphs.

## Older releases (2.0.x / 2.1.x) and Python 3.11

* `pip install --only-binary=:all: "deepmd-kit[cpu]==2.1.5"` on Python 3.11: `ERROR: Could not find a version that
  satisfies the requirement deepmd-kit[cpu]==2.1.5 (from versions: 2.2.0b0, 2.2.0, ..., 3.2.0)` /
  `ERROR: No matching distribution found for deepmd-kit[cpu]==2.1.5`: the list of installable versions starts at
  2.2.0b0, i.e. no 2.0.x/2.1.x release has a cp311 wheel (`pip index versions deepmd-kit` does list 2.0.0 … 2.1.5).
* From the sdist on Python 3.11 against TF 2.21 (pip's default): CMake fails in `cmake/Findtensorflow.cmake:178`,
  `tf_version.cpp:8:16: error: 'TF_VERSION_STRING' was not declared in this scope`; with the build pinned (PIP_CONSTRAINT)
  to TF 2.16.2 and to TF 2.12.1 (2.12 is the oldest TF series with cp311 wheels) the C++ ops compile until
  `source/op/optimizer/parallel.h:13:20: error: 'OK' is not a member of 'tsl::Status'` (both TF versions) →
  `ERROR: Failed building wheel for deepmd-kit` (each build ~6 min).
* Python 3.10 (pyenv): the PyPI wheel `deepmd_kit-2.1.5-cp310-cp310-manylinux_2_28_x86_64.whl` (built against TF
  2.10.0) installs in ~30 s with `tensorflow-cpu==2.10.0 "numpy<1.24" "protobuf<3.20"` → the `*_v2.1.5` dirs.
  2.0.x was not built (same cp311 situation; one older release was enough here).

## Licence and data

DeePMD-kit is licensed LGPL-3.0-or-later; these graphs were trained by us with it. The training/evaluation data
are `dpkeras/examples/data` = `/work/shared/data`, whose README gives the attribution:

> {attrib}
"""
open(os.path.join(OUT, "README.md"), "w").write(text)
print("wrote README.md")
