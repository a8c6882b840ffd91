#!/usr/bin/env python3
"""Write the DeePMD-kit 2.2.11 training inputs of the legacy_v2_2 fixtures.

usage: python make_inputs.py OUTDIR      (writes OUTDIR/<fixture>/input.json)

Data paths: "dpkeras/examples/data/..." are relative to the repository root (a verbatim copy of
/work/shared/data); "scratch/..." are made by make_all.sh in its scratch dir (make_tensor_data.py).
make_all.sh replaces both prefixes by absolute paths before training.
"""
import copy
import json
import os
import sys

D = "dpkeras/examples/data"
TM = ["O", "H"]
SE_A = {"type": "se_e2_a", "sel": [23, 46], "rcut_smth": 0.5, "rcut": 4.0, "neuron": [4, 8, 16],
        "resnet_dt": False, "axis_neuron": 4, "type_one_side": False, "precision": "float64", "seed": 1}
SE_R = {"type": "se_e2_r", "sel": [23, 46], "rcut_smth": 0.5, "rcut": 4.0, "neuron": [4, 8, 16],
        "resnet_dt": False, "type_one_side": False, "precision": "float64", "seed": 1}
SE_T = {"type": "se_e3", "sel": [12, 24], "rcut_smth": 0.5, "rcut": 3.0, "neuron": [4, 8, 16],
        "resnet_dt": False, "precision": "float64", "seed": 1}
SE_ATTEN = {"type": "se_atten", "sel": 60, "rcut_smth": 0.5, "rcut": 4.0, "neuron": [4, 8, 16],
            "resnet_dt": False, "axis_neuron": 4, "attn": 16, "attn_layer": 2, "attn_dotr": True,
            "attn_mask": False, "precision": "float64", "seed": 1}
TEBD = {"neuron": [8], "resnet_dt": False, "precision": "float64", "seed": 1}
FIT = {"type": "ener", "neuron": [16, 16], "resnet_dt": True, "precision": "float64", "seed": 1}
LR = {"type": "exp", "decay_steps": 10, "start_lr": 0.005, "stop_lr": 0.0005}
LOSS_E = {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1,
          "start_pref_v": 0, "limit_pref_v": 0}
LOSS_T = {"type": "tensor", "pref": 1.0, "pref_atomic": 1.0}
WATER_TRAIN = {"systems": [f"{D}/water/data_0"], "batch_size": "auto"}
WATER_VALID = {"systems": [f"{D}/water/data_3"], "batch_size": 1, "numb_btch": 1}
DIP = "water_tensor/dipole"
POL = "water_tensor/polar"
DIP_TRAIN = {"systems": [f"scratch/{DIP}/training_atomic_sel0", f"{D}/{DIP}/training_data_reformat/global_system"],
             "batch_size": "auto"}
DIP_VALID = {"systems": [f"scratch/{DIP}/validation_atomic_sel0"], "batch_size": 1, "numb_btch": 1}
POL_TRAIN = {"systems": [f"scratch/{POL}/training_atomic_sel0", f"{D}/{POL}/training_data_reformat/global_system"],
             "batch_size": "auto"}
POL_VALID = {"systems": [f"scratch/{POL}/validation_atomic_sel0"], "batch_size": 1, "numb_btch": 1}


def training(train, valid, steps=20, disp=10):
    return {"training_data": copy.deepcopy(train), "validation_data": copy.deepcopy(valid), "numb_steps": steps,
            "seed": 10, "disp_file": "lcurve.out", "disp_freq": disp, "save_freq": steps}


def single(descriptor, fitting=FIT, loss=LOSS_E, train=WATER_TRAIN, valid=WATER_VALID, tebd=None):
    model = {"type_map": TM}
    if tebd:
        model["type_embedding"] = copy.deepcopy(tebd)
    model["descriptor"] = copy.deepcopy(descriptor)
    model["fitting_net"] = copy.deepcopy(fitting)
    return {"model": model, "learning_rate": dict(LR), "loss": dict(loss), "training": training(train, valid)}


inputs = {
    "water_se_e2_a": single(SE_A),
    "water_se_e2_r": single(SE_R),
    "water_se_e3": single(SE_T),
    "water_se_atten": single(SE_ATTEN, tebd=TEBD),
    "water_hybrid": single({"type": "hybrid", "list": [SE_A, SE_R]}),
    "water_dipole": single(SE_A, {"type": "dipole", "sel_type": [0], "neuron": [16, 16], "resnet_dt": True,
                                  "precision": "float64", "seed": 1}, LOSS_T, DIP_TRAIN, DIP_VALID),
    "water_polar": single(SE_A, {"type": "polar", "sel_type": [0], "neuron": [16, 16], "resnet_dt": True,
                                 "precision": "float64", "seed": 1}, LOSS_T, POL_TRAIN, POL_VALID),
}
# multi-task (TF v2 vocabulary): one shared descriptor, fitting_net_dict / loss_dict / data_dict.
# water_a and water_b share their two hidden layers ("l0", "l1"); their output layers have their own
# names. 2.2.11's argcheck rejects null entries in layer_name, so "not shared" = a unique string.
ener_a = dict(FIT, layer_name=["l0", "l1", "out_a"])
ener_b = dict(FIT, layer_name=["l0", "l1", "out_b"])
inputs["multitask"] = {
    "model": {"type_map": TM, "descriptor": copy.deepcopy(SE_A),
              "fitting_net_dict": {"water_a": ener_a, "water_b": ener_b,
                                   "water_dipole": {"type": "dipole", "sel_type": [0], "neuron": [16, 16],
                                                    "resnet_dt": True, "precision": "float64", "seed": 1}}},
    "learning_rate": dict(LR),
    "loss_dict": {"water_a": dict(LOSS_E), "water_b": dict(LOSS_E), "water_dipole": dict(LOSS_T)},
    "training": {
        "data_dict": {
            "water_a": {"training_data": copy.deepcopy(WATER_TRAIN), "validation_data": copy.deepcopy(WATER_VALID)},
            "water_b": {"training_data": {"systems": [f"{D}/water/data_1"], "batch_size": "auto"},
                        "validation_data": copy.deepcopy(WATER_VALID)},
            "water_dipole": {"training_data": copy.deepcopy(DIP_TRAIN), "validation_data": copy.deepcopy(DIP_VALID)},
        },
        "fitting_weight": {"water_a": 1.0, "water_b": 1.0, "water_dipole": 1.0},
        "numb_steps": 30, "seed": 10, "disp_file": "lcurve.out", "disp_freq": 10, "save_freq": 30,
    },
}
# fine-tune of the water_se_atten graph (dp train input.json --finetune pretrained.pb): the user input may leave descriptor/fitting empty
# (2.2.11 takes them from the pretrained graph); 0 steps on water data_1 -> only the energy bias changes.
ft = {"model": {"type_map": TM, "descriptor": {}, "fitting_net": {}},
      "learning_rate": dict(LR), "loss": dict(LOSS_E),
      "training": dict(training({"systems": [f"{D}/water/data_1"], "batch_size": "auto"}, WATER_VALID, 0, 1),
                       save_freq=1)}
# compression: the graphs of water_se_e2_a / water_se_e2_r are compressed, their inputs are reused
inputs["compressed_se_e2_a"] = inputs["water_se_e2_a"]
inputs["compressed_se_e2_r"] = inputs["water_se_e2_r"]

out = sys.argv[1]
for name, js in inputs.items():
    os.makedirs(os.path.join(out, name), exist_ok=True)
    with open(os.path.join(out, name, "input.json"), "w") as fh:
        json.dump(js, fh, indent=2)
        fh.write("\n")
os.makedirs(os.path.join(out, "finetune_se_atten"), exist_ok=True)
with open(os.path.join(out, "finetune_se_atten", "input.json"), "w") as fh:
    json.dump(ft, fh, indent=2)
    fh.write("\n")
print("inputs written:", ", ".join(sorted(inputs)) + ", finetune_se_atten")
