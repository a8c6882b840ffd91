"""The one config schema of dpkeras: DeePMD-kit's ``input.json`` keys and defaults.

:func:`normalize` validates a user's ``input.json`` dict once, at the edge, and returns a copy
with every default filled in. Unknown keys are errors that name the key path and suggest the
closest known key; keys DeePMD-kit knows but dpkeras does not implement are accepted only at their
default value (any other value is an error naming the key).
"""

import copy
import difflib
import json
import os

from dpkeras.errors import DPKerasError

REQUIRED = object()


class Unsupported:
    """A DeePMD-kit key dpkeras accepts only at its default value."""

    def __init__(self, default, why="not implemented in dpkeras yet"):
        self.default, self.why = default, why


DESCRIPTOR_SE_E2_A = {
    "type": "se_e2_a",
    "sel": REQUIRED,
    "rcut": 6.0,
    "rcut_smth": 0.5,
    "neuron": [10, 20, 40],
    "axis_neuron": 4,
    "activation_function": "tanh",
    "resnet_dt": False,
    "type_one_side": False,
    "precision": "default",
    "trainable": True,
    "seed": None,
    "exclude_types": [],
    "env_protection": Unsupported(0.0),
    "set_davg_zero": False,
    # dpkeras: the embedding nets are DeePMD-kit compression tables, {net: {nspline,
    # table_info}} (set by the reader of compressed graphs, dpkeras.tabulate)
    "tabulated": None,
}

DESCRIPTOR_SE_E2_R = {k: v for k, v in DESCRIPTOR_SE_E2_A.items() if k != "axis_neuron"}
DESCRIPTOR_SE_E2_R["type"] = "se_e2_r"

DESCRIPTOR_SE_E3 = {k: v for k, v in DESCRIPTOR_SE_E2_A.items()
                    if k not in ("axis_neuron", "type_one_side")}
DESCRIPTOR_SE_E3["type"] = "se_e3"
DESCRIPTOR_SE_E3["exclude_types"] = Unsupported([])
DESCRIPTOR_SE_E3["tabulated"] = Unsupported(None, "(compressed se_e3) is not implemented yet")

_TF_ONLY = "is not used by DeePMD-kit's TF se_atten; set the type embedding with model.type_embedding"
DESCRIPTOR_SE_ATTEN = dict(DESCRIPTOR_SE_E2_A)
DESCRIPTOR_SE_ATTEN.update({
    "type": "se_atten",
    "tabulated": Unsupported(None, "(compressed se_atten) is not implemented yet"),
    "compressible": Unsupported(False),
    "lmax": Unsupported(None),
    "attn": 128,
    "attn_layer": 2,
    "attn_dotr": True,
    "attn_mask": False,
    "stripped_type_embedding": None,
    "smooth_type_embedding": False,
    "set_davg_zero": True,
    "trainable_ln": True,
    "ln_eps": None,
    "tebd_dim": Unsupported(8, _TF_ONLY),
    "use_econf_tebd": Unsupported(False),
    "use_tebd_bias": Unsupported(False, _TF_ONLY),
    "tebd_input_mode": "concat",
    "scaling_factor": Unsupported(1.0, "is not supported by DeePMD-kit's TF se_atten either"),
    "normalize": Unsupported(True, "is not supported by DeePMD-kit's TF se_atten either"),
    "temperature": Unsupported(None, "is not supported by DeePMD-kit's TF se_atten either"),
    "concat_output_tebd": Unsupported(True),
})

# se_atten_v2 = se_atten in strip mode with the smooth type embedding (fixed, not keys)
DESCRIPTOR_SE_ATTEN_V2 = {k: v for k, v in DESCRIPTOR_SE_ATTEN.items()
                          if k not in ("stripped_type_embedding", "smooth_type_embedding",
                                       "tebd_input_mode")}
DESCRIPTOR_SE_ATTEN_V2.update(type="se_atten_v2", set_davg_zero=False)

DESCRIPTOR_HYBRID = {"type": "hybrid", "list": REQUIRED}

# model.type_embedding (used by se_atten, se_e2_a as se_e2_a_tebd, a hybrid with an attention
# member); when the section is absent DeePMD-kit uses these
# defaults with a linear activation
TYPE_EMBEDDING = {
    "neuron": [8],
    "activation_function": "tanh",
    "resnet_dt": False,
    "precision": "default",
    "trainable": True,
    "seed": None,
    "use_econf_tebd": Unsupported(False),
    "use_tebd_bias": False,
}

FITTING_ENER = {
    "type": "ener",
    "neuron": [120, 120, 120],
    "activation_function": "tanh",
    "precision": "default",
    "resnet_dt": True,
    "trainable": True,
    "rcond": None,
    "seed": None,
    "atom_ener": Unsupported([]),
    "numb_fparam": 0,
    "numb_aparam": 0,
    "default_fparam": Unsupported(None),
    "dim_case_embd": Unsupported(0),
    "use_aparam_as_mask": Unsupported(False),
    "layer_name": None,
}

FITTING_DIPOLE = {
    "type": "dipole",
    "neuron": [120, 120, 120],
    "activation_function": "tanh",
    "resnet_dt": True,
    "precision": "default",
    "sel_type": None,
    "seed": None,
    "numb_fparam": Unsupported(0, "is not supported by DeePMD-kit's TF tensor fittings either"),
    "numb_aparam": Unsupported(0, "is not supported by DeePMD-kit's TF tensor fittings either"),
    "default_fparam": Unsupported(None),
    "dim_case_embd": Unsupported(0),
}

FITTING_POLAR = dict(FITTING_DIPOLE, type="polar", fit_diag=True, scale=1.0, shift_diag=True)

# DeePMD-kit's older spellings of sel_type
FITTING_ALIASES = {"dipole": {"dipole_type": "sel_type", "n_neuron": "neuron"},
                   "polar": {"pol_type": "sel_type", "n_neuron": "neuron"},
                   "ener": {"n_neuron": "neuron"}}

# the multi-task keys, met in a single-task input (dpkeras.multitask.config handles the others)
_SINGLE = ("is a multi-task key, but this input is single-task (it has model.fitting_net, not "
           "model.fitting_net_dict or model.model_dict): single- and multi-task keys cannot be "
           "mixed")

MODEL = {
    "type_map": REQUIRED,
    "descriptor": REQUIRED,
    "fitting_net": REQUIRED,
    "data_stat_nbatch": 10,
    "data_stat_protect": 0.01,
    "data_bias_nsample": 10,
    "type": "standard",
    "type_embedding": None,
    "modifier": Unsupported(None),
    "compress": Unsupported(None),
    "spin": Unsupported(None),
    "use_srtab": Unsupported(None),
    "smin_alpha": Unsupported(None),
    "sw_rmin": Unsupported(None),
    "sw_rmax": Unsupported(None),
    "pair_exclude_types": Unsupported([]),
    "atom_exclude_types": Unsupported([]),
    "preset_out_bias": Unsupported(None),
    "srtab_add_bias": True,
    "model_branch_alias": [],
    # multi-task fine-tuning: the pretrained branch a new head starts from (dpkeras.finetune)
    "finetune_head": None,
    "info": {},
    "bridging_method": Unsupported("None"),
    "bridging_r_inner": 0.5,
    "bridging_r_outer": 0.8,
    "fitting_net_dict": Unsupported(None, _SINGLE),
    "model_dict": Unsupported(None, _SINGLE),
    "shared_dict": Unsupported(None, _SINGLE),
}

LEARNING_RATE_EXP = {
    "type": "exp",
    "start_lr": 1e-3,
    "stop_lr": 1e-8,
    "decay_steps": 5000,
    "decay_rate": None,
    "stop_lr_ratio": Unsupported(None),
    "warmup_steps": Unsupported(0),
    "warmup_ratio": Unsupported(None),
    "warmup_start_factor": Unsupported(0.0),
    "scale_by_worker": "linear",
    "smooth": Unsupported(False),
}

LOSS_TENSOR = {
    "type": "tensor",
    "pref": REQUIRED,
    "pref_atomic": REQUIRED,
    "enable_atomic_weight": Unsupported(False),
}

LOSS_ENER = {
    "type": "ener",
    "start_pref_e": 0.02,
    "limit_pref_e": 1.0,
    "start_pref_f": 1000.0,
    "limit_pref_f": 1.0,
    "start_pref_v": 0.0,
    "limit_pref_v": 0.0,
    "start_pref_ae": 0.0,
    "limit_pref_ae": 0.0,
    "start_pref_pf": Unsupported(0.0),
    "limit_pref_pf": Unsupported(0.0),
    "start_pref_h": Unsupported(0.0),
    "limit_pref_h": Unsupported(0.0),
    "start_pref_gf": Unsupported(0.0),
    "limit_pref_gf": Unsupported(0.0),
    "numb_generalized_coord": Unsupported(0),
    "relative_f": Unsupported(None),
    "enable_atom_ener_coeff": Unsupported(False),
    "use_default_pf": Unsupported(False),
    "use_huber": Unsupported(False),
    "huber_delta": 0.01,
    "loss_func": Unsupported("mse"),
    "f_use_norm": Unsupported(False),
    "intensive_ener_virial": Unsupported(False),
}

DATA = {
    "systems": REQUIRED,
    "batch_size": "auto",
    "auto_prob": "prob_sys_size",
    "auto_prob_style": None,  # DeePMD-kit's older spelling of auto_prob
    "sys_probs": None,
    "sys_weights": None,  # older spelling of sys_probs
    "set_prefix": "set",
    "rglob_patterns": Unsupported(None),
    "min_pair_dist": Unsupported(0.0),
}

VALIDATION_DATA = dict(DATA, batch_size="auto", numb_btch=1)
VALIDATION_DATA.pop("min_pair_dist")

TRAINING = {
    "training_data": REQUIRED,
    "validation_data": None,
    "numb_steps": REQUIRED,
    "seed": None,
    "disp_file": "lcurve.out",
    "disp_freq": 1000,
    "save_freq": 1000,
    "save_ckpt": "model.ckpt",
    "max_ckpt_keep": 5,
    "disp_training": True,
    "time_training": True,
    "profiling": False,
    "profiling_file": "timeline.json",
    "tensorboard": False,
    "tensorboard_log_dir": "log",
    "tensorboard_freq": 1,
    "stat_file_mode": "update",
    "save_dir": None,
    "enable_profiler": False,
    "disp_avg": False,
    "change_bias_after_training": Unsupported(False),
    "data_dict": Unsupported(None, _SINGLE),
    "fitting_weight": Unsupported(None, _SINGLE),
    "model_prob": Unsupported(None, _SINGLE),
    "numb_test": 1,
    "set_prefix": "set",
    "gradient_max_norm": Unsupported(None),
    "mixed_precision": Unsupported(None),
    "opt_type": "Adam",
    "enable_ema": Unsupported(False),
    "ema_decay": 0.999,
    "ema_ckpt_keep": None,
    "ckpt_keep_ratio": None,
    "acc_freq": 1,
    "zero_stage": 0,
    "neighbor_graph_method": "auto",
    "enable_compile": False,
    "enable_tf32": False,
    "stat_file": None,
    "warmup_steps": Unsupported(0),
}

TOP = {
    "model": REQUIRED,
    "learning_rate": {},
    "loss": {},
    "training": REQUIRED,
    "nvnmd": Unsupported(None),
    "loss_dict": Unsupported(None, _SINGLE),
}

DESCRIPTOR_SCHEMAS = {"se_e2_a": DESCRIPTOR_SE_E2_A, "se_a": DESCRIPTOR_SE_E2_A,
                      "se_e2_r": DESCRIPTOR_SE_E2_R, "se_r": DESCRIPTOR_SE_E2_R,
                      "se_e3": DESCRIPTOR_SE_E3, "se_t": DESCRIPTOR_SE_E3,
                      "se_a_3be": DESCRIPTOR_SE_E3, "se_atten": DESCRIPTOR_SE_ATTEN,
                      "dpa1": DESCRIPTOR_SE_ATTEN, "se_atten_v2": DESCRIPTOR_SE_ATTEN_V2,
                      "hybrid": DESCRIPTOR_HYBRID}
# the name each alias is stored under
CANONICAL = {"se_a": "se_e2_a", "se_r": "se_e2_r", "se_t": "se_e3", "se_a_3be": "se_e3",
             "dpa1": "se_atten"}
FITTING_SCHEMAS = {"ener": FITTING_ENER, "dipole": FITTING_DIPOLE, "polar": FITTING_POLAR}
LR_SCHEMAS = {"exp": LEARNING_RATE_EXP}
LOSS_SCHEMAS = {"ener": LOSS_ENER, "tensor": LOSS_TENSOR}
# the descriptors built on a type embedding (model.type_embedding applies to them)
ATTENTION_DESCRIPTORS = ("se_atten", "se_atten_v2")
# the descriptors that can take model.type_embedding (se_e2_a then is DeePMD-kit's se_e2_a_tebd)
TYPE_EMBEDDED_DESCRIPTORS = ATTENTION_DESCRIPTORS + ("se_e2_a",)
# descriptor kinds DeePMD-kit has that dpkeras does not implement yet
KNOWN_DESCRIPTORS = ["se_a_mask", "se_a_ebd_v2", "dpa2", "dpa3", "se_e3_tebd"]


def _fail(path, msg):
    raise DPKerasError(f"input.json: {path}: {msg}")


def _apply_schema(section, schema, path):
    if not isinstance(section, dict):
        _fail(path, f"expected an object, got {type(section).__name__}")
    out = {}
    for key, value in section.items():
        if key.startswith("_") or key == "@comment":  # DeePMD-kit comments ("_comment")
            continue
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            _fail(f"{path}.{key}", f"unknown key{hint} (known keys: {', '.join(sorted(schema))})")
        spec = schema[key]
        if isinstance(spec, Unsupported):
            if value != spec.default:
                _fail(f"{path}.{key}", f"{key} = {json.dumps(value)} {spec.why}; remove the key "
                      f"or set it to {json.dumps(spec.default)}")
        out[key] = value
    for key, spec in schema.items():
        if key in out:
            continue
        if spec is REQUIRED:
            _fail(f"{path}.{key}", "required key is missing")
        out[key] = copy.deepcopy(spec.default if isinstance(spec, Unsupported) else spec)
    return out


def _typed_section(section, schemas, path, default_type, what):
    if not isinstance(section, dict):
        _fail(path, f"expected an object, got {type(section).__name__}")
    kind = section.get("type", default_type)
    if kind not in schemas:
        if what == "descriptor" and kind in KNOWN_DESCRIPTORS:
            _fail(f"{path}.type", f"descriptor {kind!r} is not implemented in dpkeras yet "
                  f"(available: {', '.join(sorted(schemas))})")
        close = difflib.get_close_matches(str(kind), list(schemas), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        _fail(f"{path}.type", f"unknown {what} type {kind!r}{hint} "
              f"(available: {', '.join(sorted(schemas))})")
    out = _apply_schema(dict(section, type=kind), schemas[kind], path)
    return out


def _check_descriptor(d, ntypes, path):
    if d["type"] == "hybrid":
        return _check_hybrid(d, ntypes, path)
    if d["type"] in ATTENTION_DESCRIPTORS:
        return _check_se_atten(d, ntypes, path)
    sel = d["sel"]
    if isinstance(sel, str):
        _check_auto_sel(sel, f"{path}.sel")
    elif not isinstance(sel, list) or len(sel) != ntypes or not all(
            isinstance(s, int) and s >= 0 for s in sel):
        _fail(f"{path}.sel", f"expected a list of {ntypes} non-negative integers (one per "
              f"element of type_map), got {json.dumps(sel)}")
    _check_common(d, ntypes, path)


def _check_hybrid(d, ntypes, path):
    subs = d["list"]
    if not isinstance(subs, list) or not subs:
        _fail(f"{path}.list", "expected a non-empty list of descriptor sections")
    out = []
    for k, sub in enumerate(subs):
        p = f"{path}.list[{k}]"
        if isinstance(sub, dict) and sub.get("type") == "hybrid":
            _fail(f"{p}.type", "a hybrid descriptor cannot contain another hybrid")
        sub = _typed_section(sub, DESCRIPTOR_SCHEMAS, p, None, "descriptor")
        sub["type"] = CANONICAL.get(sub["type"], sub["type"])
        _check_descriptor(sub, ntypes, p)
        out.append(sub)
    d["list"] = out
    if any(sub["type"] in ATTENTION_DESCRIPTORS for sub in out):
        _check_type_embedded_members(d, path, "with an attention member (se_atten, se_atten_v2)")


def _check_type_embedded_members(d, path, why):
    """A hybrid whose members share a type embedding: se_e2_a and attention members only."""
    for k, sub in enumerate(d["list"]):
        if sub["type"] not in TYPE_EMBEDDED_DESCRIPTORS:
            _fail(f"{path}.list[{k}].type", f"a hybrid {why} shares one type embedding among "
                  f"its members, which {sub['type']} cannot take (DeePMD-kit's TF backend "
                  "neither); combine se_e2_a, se_atten and se_atten_v2 only")


def _check_common(d, ntypes, path):
    """Checks every descriptor shares: cut-offs, axis_neuron, exclude_types, precision."""
    if not 0 <= d["rcut_smth"] < d["rcut"]:
        _fail(f"{path}.rcut_smth", f"need 0 <= rcut_smth < rcut, got rcut_smth={d['rcut_smth']}"
              f", rcut={d['rcut']}")
    if "axis_neuron" in d and d["axis_neuron"] > d["neuron"][-1]:
        _fail(f"{path}.axis_neuron", f"axis_neuron {d['axis_neuron']} exceeds the last "
              f"embedding width {d['neuron'][-1]}")
    for pair in d["exclude_types"]:
        if len(pair) != 2 or not all(0 <= t < ntypes for t in pair):
            _fail(f"{path}.exclude_types", f"{pair} is not a pair of type indices < {ntypes}")
    _check_precision(d, path)


def auto_sel_factor(sel):
    """The factor of ``sel: "auto"`` (1.1) or ``"auto:F"``; ``None`` for an explicit sel."""
    if not isinstance(sel, str):
        return None
    word, _, factor = sel.partition(":")
    if word != "auto":
        return None
    return float(factor) if factor else 1.1


def _check_auto_sel(sel, path):
    try:
        factor = auto_sel_factor(sel)
    except ValueError:
        factor = None
    if factor is None or factor <= 0:
        _fail(path, f"sel = {json.dumps(sel)}: expected \"auto\" or \"auto:FACTOR\" (e.g. "
              "\"auto:1.1\"), or explicit neighbor counts")
    return True


def _check_se_atten(d, ntypes, path):
    sel = d["sel"]
    ok = (isinstance(sel, int) and not isinstance(sel, bool) and sel > 0) or (
        isinstance(sel, list) and sel and all(isinstance(s, int) and s >= 0 for s in sel)
        and sum(sel) > 0)
    if isinstance(sel, str):
        ok = _check_auto_sel(sel, f"{path}.sel")
    if not ok:
        _fail(f"{path}.sel", "expected a positive integer (all neighbor types together) or a "
              f"list of non-negative integers, got {json.dumps(sel)}")
    if "tebd_input_mode" in d:
        # the deprecated stripped_type_embedding wins over tebd_input_mode, as in DeePMD-kit
        strip = d.pop("stripped_type_embedding")
        if strip is not None:
            d["tebd_input_mode"] = "strip" if strip else "concat"
        if d["tebd_input_mode"] not in ("concat", "strip"):
            _fail(f"{path}.tebd_input_mode", f"expected 'concat' or 'strip', got "
                  f"{json.dumps(d['tebd_input_mode'])}")
    _check_common(d, ntypes, path)


def _check_precision(d, path):
    """``default`` is float64 (DeePMD-kit's default); float32 networks compute in float32 between
    float64 environment matrices and float64 energies/forces, as DeePMD-kit's TF backend."""
    if d["precision"] not in ("default", "float64", "float32"):
        _fail(f"{path}.precision", f"precision {d['precision']!r} is not supported; use "
              "'float64' (or 'default') or 'float32'")
    d["precision"] = "float64" if d["precision"] == "default" else d["precision"]


def _check_trainable(section, nlayers, path):
    """``trainable``: a bool, or (fitting nets) one bool per layer, hidden layers then output."""
    t = section["trainable"]
    if isinstance(t, bool) or (isinstance(t, list) and len(t) == nlayers and
                               all(isinstance(x, bool) for x in t)):
        return
    _fail(f"{path}.trainable", f"expected true/false or a list of {nlayers} booleans (one per "
          f"layer, the output layer last), got {json.dumps(t)}")


def normalize_model(model):
    """Validate the ``model`` section and fill defaults."""
    m = _apply_schema(model, MODEL, "model")
    tm = m["type_map"]
    if not isinstance(tm, list) or not tm or not all(isinstance(t, str) for t in tm):
        _fail("model.type_map", "expected a non-empty list of element names")
    if len(set(tm)) != len(tm):
        _fail("model.type_map", f"duplicate element names in {tm}")
    m["descriptor"] = _typed_section(m["descriptor"], DESCRIPTOR_SCHEMAS, "model.descriptor",
                                     None, "descriptor")
    kind = m["descriptor"]["type"]
    m["descriptor"]["type"] = CANONICAL.get(kind, kind)
    _check_descriptor(m["descriptor"], len(tm), "model.descriptor")
    if m["type_embedding"] is not None:
        if m["descriptor"]["type"] == "hybrid":
            _check_type_embedded_members(m["descriptor"], "model.descriptor",
                                         "with model.type_embedding")
        elif m["descriptor"]["type"] not in TYPE_EMBEDDED_DESCRIPTORS:
            _fail("model.type_embedding", "a type embedding is only implemented for the "
                  "se_e2_a, se_atten and se_atten_v2 descriptors (and a hybrid of them), not "
                  f"{m['descriptor']['type']!r}; remove the section")
        m["type_embedding"] = _apply_schema(m["type_embedding"], TYPE_EMBEDDING,
                                            "model.type_embedding")
        _check_precision(m["type_embedding"], "model.type_embedding")
    fit = m["fitting_net"]
    if isinstance(fit, dict):
        aliases = FITTING_ALIASES.get(fit.get("type", "ener"), {})
        fit = {aliases.get(k, k): v for k, v in fit.items()}
    m["fitting_net"] = _typed_section(fit, FITTING_SCHEMAS, "model.fitting_net",
                                      "ener", "fitting_net")
    _check_precision(m["fitting_net"], "model.fitting_net")
    if m["fitting_net"]["precision"] != "float64" and m["fitting_net"]["type"] != "ener":
        _fail("model.fitting_net.precision", f"float32 is only implemented for the ener "
              f"fitting, not {m['fitting_net']['type']!r}; use 'float64'")
    if "trainable" in m["fitting_net"]:
        _check_trainable(m["fitting_net"], len(m["fitting_net"]["neuron"]) + 1,
                         "model.fitting_net")
    if m["fitting_net"]["type"] in ("dipole", "polar"):
        if m["type_embedding"] is not None:
            _fail("model.type_embedding", f"the {m['fitting_net']['type']} fitting is "
                  "implemented for the per-type se_e2_a descriptor only; remove the section")
        _check_tensor_fitting(m["fitting_net"], m["descriptor"], len(tm))
    _check_layer_name(m["fitting_net"], "model.fitting_net")
    return m


def _check_layer_name(f, path):
    """``layer_name``: one name (or null) per layer, hidden layers then the output layer."""
    names = f.get("layer_name")
    if names is None:
        return
    n = len(f["neuron"]) + 1
    if not isinstance(names, list) or len(names) != n or not all(
            x is None or (isinstance(x, str) and x) for x in names):
        _fail(f"{path}.layer_name", f"expected a list of {n} names or nulls (one per layer, "
              f"the output layer last), got {json.dumps(names)}")


def _check_tensor_fitting(f, d, ntypes):
    """``dipole``/``polar``: se_e2_a descriptor, ``sel_type`` (int, list or None = all types)
    and ``scale`` (float or one per type) normalized to lists."""
    path = "model.fitting_net"
    if d["type"] != "se_e2_a":
        _fail(f"{path}.type", f"the {f['type']} fitting is implemented for the se_e2_a "
              f"descriptor only (it needs its rotation matrix), not {d['type']!r}")
    sel = f["sel_type"]
    if sel is None:
        sel = list(range(ntypes))
    elif isinstance(sel, int) and not isinstance(sel, bool):
        sel = [sel]
    if not isinstance(sel, list) or not sel or not all(
            isinstance(t, int) and 0 <= t < ntypes for t in sel):
        _fail(f"{path}.sel_type", f"expected type indices < {ntypes} (an int or a list), got "
              f"{json.dumps(f['sel_type'])}")
    f["sel_type"] = sorted(set(sel))
    if "scale" in f:
        sc = f["scale"]
        if isinstance(sc, (int, float)) and not isinstance(sc, bool):
            sc = [float(sc)] * ntypes
        if not isinstance(sc, list) or len(sc) != ntypes or not all(
                isinstance(x, (int, float)) for x in sc):
            _fail(f"{path}.scale", f"expected a number or a list of {ntypes} numbers (one per "
                  f"type), got {json.dumps(f['scale'])}")
        f["scale"] = [float(x) for x in sc]


def _normalize_data(d, schema, path):
    if isinstance(d, (list, str)):
        d = {"systems": d}
    out = _apply_schema(d, schema, path)
    if isinstance(out["systems"], str):
        out["systems"] = [out["systems"]]
    if out.get("auto_prob_style") is not None:
        out["auto_prob"] = out.pop("auto_prob_style")
    out.pop("auto_prob_style", None)
    if out.get("sys_weights") is not None:
        out["sys_probs"] = out.pop("sys_weights")
    out.pop("sys_weights", None)
    return out


def normalize(config):
    """Validate a whole ``input.json`` dict; return a normalized copy (defaults filled).
    A multi-task input (``model.fitting_net_dict`` or ``model.model_dict``) is normalized by
    :func:`dpkeras.multitask.config.normalize_multitask`."""
    from dpkeras.multitask.config import is_multitask_input, normalize_multitask

    if is_multitask_input(config):
        return normalize_multitask(config)
    top = _apply_schema(config, TOP, "")
    out = {"model": normalize_model(top["model"])}
    out["learning_rate"] = _typed_section(top["learning_rate"], LR_SCHEMAS, "learning_rate",
                                          "exp", "learning_rate")
    tensor = out["model"]["fitting_net"]["type"] in ("dipole", "polar")
    out["loss"] = _typed_section(top["loss"], LOSS_SCHEMAS, "loss",
                                 "tensor" if tensor else "ener", "loss")
    if tensor != (out["loss"]["type"] == "tensor"):
        _fail("loss.type", f"loss {out['loss']['type']!r} does not fit the "
              f"{out['model']['fitting_net']['type']!r} fitting (use 'tensor' for dipole/polar, "
              "'ener' for ener)")
    if out["loss"]["type"] == "tensor":
        for key in ("pref", "pref_atomic"):
            v = out["loss"][key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                _fail(f"loss.{key}", f"expected a non-negative number, got {json.dumps(v)}")
        if out["loss"]["pref"] == 0 and out["loss"]["pref_atomic"] == 0:
            _fail("loss.pref", "pref and pref_atomic are both 0; give one a positive weight")
    t = _apply_schema(top["training"], TRAINING, "training")
    t["training_data"] = _normalize_data(t["training_data"], DATA, "training.training_data")
    if t["validation_data"] is not None:
        t["validation_data"] = _normalize_data(t["validation_data"], VALIDATION_DATA,
                                               "training.validation_data")
    if not isinstance(t["numb_steps"], int) or t["numb_steps"] < 0:
        _fail("training.numb_steps", f"expected a non-negative integer, got {t['numb_steps']!r}")
    for key in ("disp_freq", "save_freq"):
        if not isinstance(t[key], int) or t[key] <= 0:
            _fail(f"training.{key}", f"expected a positive integer, got {t[key]!r}")
    out["training"] = t
    return out


def read_input(path):
    """The raw dict of an ``input.json`` file (one clear error for a missing/invalid file)."""
    if not os.path.isfile(path):
        raise DPKerasError(f"{path}: input file not found")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DPKerasError(f"{path}: not valid JSON ({exc})") from None


def load_input(path):
    """Read and normalize an ``input.json`` file."""
    raw = read_input(path)
    try:
        return normalize(raw)
    except DPKerasError as exc:
        raise DPKerasError(str(exc).replace("input.json:", f"{path}:", 1)) from None


def _constructor_args(section, schema, drop=()):
    """A validated section minus the keys that only exist at their default (``Unsupported``)
    and ``drop``: what the layer constructors take."""
    return {k: v for k, v in section.items()
            if not isinstance(schema.get(k), Unsupported) and k not in drop}


def _descriptor_args(d):
    if d["type"] == "hybrid":
        return {"type": "hybrid", "list": [_descriptor_args(sub) for sub in d["list"]]}
    return _constructor_args(d, DESCRIPTOR_SCHEMAS[d["type"]])


def model_kwargs(model_section):
    """Split a normalized model section into ``EnergyModel`` constructor arguments."""
    d = model_section["descriptor"]
    f = model_section["fitting_net"]
    out = {"type_map": list(model_section["type_map"]),
           "descriptor": _descriptor_args(d),
           "fitting_net": _constructor_args(f, FITTING_SCHEMAS[f["type"]], drop=("rcond",))}
    if isinstance(f.get("trainable"), list):   # per-layer flags: the layer is trainable if any
        out["fitting_net"]["trainable"] = any(f["trainable"])   # is (dpkeras.trainer applies them)
    te = model_section.get("type_embedding")
    if te is not None:
        out["type_embedding"] = _constructor_args(
            te, TYPE_EMBEDDING, drop=("precision",) if te["precision"] == "float64" else ())
    return out
