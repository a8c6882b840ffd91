import json, os, subprocess
G="/work/.mirror/deepmodeling+deepmd-kit/repo"
D="/work/main/tests/data/deepmd_suite"
def git(*a): return subprocess.check_output(["git","--git-dir="+G,*a]).decode().strip()
desc = {
 "deeppot": "se_e2_a (ProdEnvMatA, sel [46,92], rcut 6.0, rcut_smth 0.5; per (centre type i, neighbour type j) embedding nets `filter_type_i/matrix_k_j`, i.e. type_one_side=False; embedding widths [2,4,8]; fitting `layer_0` input 32 = 8 x 4, i.e. axis_neuron 4) + `ener` fitting per type, widths [6,6,6] with `idt` on layers 1-2 (resnet_dt); no training_script",
 "deeppot-r": "se_e2_r (ProdEnvMatR/ProdForceSeR/ProdVirialSeR, sel [46,92], rcut 6.0, rcut_smth 1.0; embedding widths [2,4,8], fitting input 8) + `ener` fitting widths [4,4,4] with `idt` on layers 1-2; no training_script",
 "deeppot-1": "se_e2_a, same architecture/attrs as deeppot (sel [46,92], rcut 6.0, rcut_smth 0.5) with different weights; `ener`; no training_script",
 "fparam_aparam": "se_e2_a (1 type, sel [60], rcut 6.0, rcut_smth 1.8, neuron [5,10,20], axis 8) + `ener` fitting [5,5,5] resnet_dt, numb_fparam=1, numb_aparam=1; training_script present",
 "se_e2_a_tebd": "se_e2_a with type embedding (`type_embed_net`, neuron [8]; `filter_type_all`), sel [2,2], rcut 6.0; `ener` fitting with no hidden layers; training_script present",
 "se_atten_no_atten_1": "se_atten / DPA-1 with attn_layer=0 (ProdEnvMatAMix, sel 10, rcut 6.0, rcut_smth 0.5, neuron [2,4,8]) + type embedding + `ener` fitting [10,10,10]; training_script present",
 "se_atten_no_atten_2": "as se_atten_no_atten_1 with different weights",
 "deepdipole": "se_e2_a (sel [46,92], rcut 4.0, rcut_smth 0.5) + dipole fitting, sel_type [0]; outputs o_dipole only (no force/virial ops)",
 "deepdipole_new": "se_e2_a (sel [46,92], rcut 4.0, rcut_smth 3.8) + dipole fitting, sel_type [0]; with o_global_dipole, o_force, o_virial, o_atom_virial (3 ProdForceSeA/ProdVirialSeA, one per component)",
 "deepdipole_fake": "se_e2_a (sel [5,10], rcut 2.0, rcut_smth 1.8) + dipole fitting, sel_type [0,1]; with force/virial outputs",
 "deeppolar": "se_e2_a (sel [46,92], rcut 6.0, rcut_smth 0.5) + polar fitting, sel_type [0]; o_polar only",
 "deeppolar_new": "se_e2_a (sel [46,92], rcut 6.0, rcut_smth 5.8) + polar fitting, sel_type [0]; with global/force/virial outputs (9 ProdForceSeA/ProdVirialSeA)",
 "deepdos": "se_e2_a (1 type Si, sel [90], rcut 5.0, rcut_smth 4.8) + `dos` fitting [40,40,40], numb_dos 250; training_script present",
 "deepspin": "se_e2_a with TF 'virtual atom' spin (ntypes 3 = Ni, O, virtual-Ni; spin_attr/*), sel [60,60,60], rcut 5.6, rcut_smth 5.4, neuron [1]; `ener` fitting [1]; training_script present",
 "deepspin_nlist": "as deepspin but type_one_side (`filter_type_all`), neuron [20], fitting [20]; spin passed as separate input in the C++ DeepSpin API; training_script present",
 "dipolecharge_d": "se_e2_a (5 types A-E, sel [5]*5, rcut 4.0, rcut_smth 0.8, `filter_type_all`) + dipole fitting, sel_type [1,3]; used by DipoleChargeModifier (DPLR)",
 "dipolecharge_e": "DPLR: `ener` model (se_e2_a, same attrs as dipolecharge_d) + the dipole model embedded under prefix `dipole_charge/` + `modifier_attr/*` (type dipole_charge, ewald_h 4, ewald_beta 0.2, charge maps), placeholder t_ef, outputs o_dm_force/o_dm_virial/o_dm_av",
 "dp4mask": "se_a_mask (custom DescrptSeAMask/ProdForceSeAMask; sel [20,1], no rcut) + `ener` fitting [2,2,2]; aparam (dim 1) is the atom mask, t_aparam placeholder; training_script present",
}
cases=json.load(open(f"{D}/cases.json"))["cases"]
lines=[]
w=lines.append
w("## Graphs\n")
w("All 18 graphs carry `model_attr/model_version` = `1.1` (dipolecharge_e also `dipole_charge/model_attr/model_version` = `1.1`); none stores a DeePMD-kit software version string, so the era is given by the git dates. "
  "'added' / 'last change' are the commits touching `source/tests/infer/<name>.pbtxt` on master. All are float64 graphs.\n")
w("| .pb | bytes (.pb / .pbtxt) | source path @ HEAD, git blob | added | last change | model_type | description |")
w("|---|---|---|---|---|---|---|")
for g in open("graphs.txt").read().split():
    f=f"source/tests/infer/{g}.pbtxt"
    first=git("log","--format=%h %cs","--diff-filter=A","HEAD","--",f).splitlines()[-1]
    last=git("log","-1","--format=%h %cs","HEAD","--",f)
    blob=git("rev-parse",f"HEAD:{f}")
    mt = {"deepdipole":"dipole","deepdipole_new":"dipole","deepdipole_fake":"dipole","deeppolar":"polar","deeppolar_new":"polar","deepdos":"dos","dipolecharge_d":"dipole"}.get(g,"ener")
    w(f"| `{g}.pb` | {os.path.getsize(f'{D}/{g}.pb')} / {os.path.getsize(f'/tmp/work/pbtxt/{g}.pbtxt')} | `{f}` `{blob[:12]}` | {first} | {last} | {mt} | {desc[g]} |")
w("")
w("## Cases\n")
w("| file | graph(s) | test source (commit:path, class) | tolerance | options / notes |")
w("|---|---|---|---|---|")
for c in cases:
    s=c["source"]
    gr = c["graph"] if isinstance(c["graph"], str) else ", ".join(c["graph"])
    opt = "; ".join(f"{k}: {v}" for k,v in c["options"].items())
    note = (opt + (" — " + c["notes"] if c["notes"] else "")).replace("|","\\|").replace("\n"," ")
    tol = c["tolerance"].replace("|", "\\|")
    w(f"| `{c['file']}` | {gr} | `{s['commit'][:10]}:{s['path']}` `{s['class']}` | {tol} | {note} |")
w("")
open("README_tables.md","w").write("\n".join(lines))
