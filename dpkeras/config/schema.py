"""The schema of ``input.json``: DeePMD-kit's keys and defaults, one table per section kind,
and the two functions that apply a table to a user's section.

Unknown keys are errors that name the key path and suggest the closest known key; keys
DeePMD-kit knows but dpkeras does not implement (:class:`Unsupported`) are accepted only at their
default value (any other value is an error naming the key).
"""

import copy
import difflib
import json

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

_TF_ONLY = "is not used by DeePMD-kit's TF se_atten; set the type embedding with model.type_embedding"
DESCRIPTOR_SE_ATTEN = dict(DESCRIPTOR_SE_E2_A)
DESCRIPTOR_SE_ATTEN.update({
    "type": "se_atten",
    # dpkeras: strip mode's geometric net as a compression table (dpkeras.compress)
    "tabulated": None,
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

# the multi-task keys, met in a single-task input (dpkeras.config.multitask handles the others)
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
    "srtab_add_bias": Unsupported(True),
    "model_branch_alias": Unsupported([]),
    # multi-task fine-tuning: the pretrained branch a new head starts from (dpkeras.finetune)
    "finetune_head": None,
    "info": {},
    "bridging_method": Unsupported("None"),
    "bridging_r_inner": Unsupported(0.5),
    "bridging_r_outer": Unsupported(0.8),
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
    # dpkeras splits batch_size over the tf.distribute replicas (the update is one device's),
    # so there is nothing to scale
    "scale_by_worker": Unsupported("linear", "is not needed: under tf.distribute dpkeras "
                                   "splits the batch over the replicas and keeps the learning "
                                   "rate"),
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
    "huber_delta": Unsupported(0.01),
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
    "stop_batch": None,   # DeePMD-kit TF's older name of numb_steps
    "validation_data": None,
    "numb_steps": REQUIRED,
    "seed": None,
    "disp_file": "lcurve.out",
    "disp_freq": 1000,
    "save_freq": 1000,
    "save_ckpt": Unsupported("model.ckpt", "dpkeras writes checkpoints to OUTPUT_DIR/checkpoints/"),
    "max_ckpt_keep": 5,
    "disp_training": Unsupported(True),
    "time_training": Unsupported(True),
    "profiling": False,
    "profiling_file": "timeline.json",
    "tensorboard": False,
    "tensorboard_log_dir": "log",
    "tensorboard_freq": 1,
    "stat_file_mode": Unsupported("update"),
    "save_dir": Unsupported(None),
    "enable_profiler": Unsupported(False, "(PyTorch backend) is not implemented; use "
                                   "training.profiling"),
    "disp_avg": Unsupported(False),
    "change_bias_after_training": Unsupported(False),
    "data_dict": Unsupported(None, _SINGLE),
    "fitting_weight": Unsupported(None, _SINGLE),
    "model_prob": Unsupported(None, _SINGLE),
    "numb_test": Unsupported(1, "(DeePMD-kit 1.x's test frames during training) is not used; "
                                "validation uses validation_data.numb_btch"),
    "set_prefix": Unsupported("set", "belongs in training_data / validation_data"),
    "gradient_max_norm": Unsupported(None),
    "mixed_precision": None,   # {"output_prec": "float32", "compute_prec": "float16"|"bfloat16"}
    "opt_type": Unsupported("Adam", "is not implemented: dpkeras trains with Adam"),
    "enable_ema": Unsupported(False),
    "ema_decay": Unsupported(0.999),
    "ema_ckpt_keep": Unsupported(None),
    "ckpt_keep_ratio": Unsupported(None),
    "acc_freq": Unsupported(1),
    "zero_stage": Unsupported(0),
    "neighbor_graph_method": Unsupported("auto"),
    "enable_compile": Unsupported(False, "(PyTorch backend) is not implemented; dpkeras "
                                  "compiles with XLA (--jit_compile)"),
    "enable_tf32": Unsupported(False),
    "stat_file": Unsupported(None),
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
                      "se_a_ebd_v2": DESCRIPTOR_SE_E2_A, "se_a_tebd_v2": DESCRIPTOR_SE_E2_A,
                      "hybrid": DESCRIPTOR_HYBRID}
# the name each alias is stored under
# se_a_ebd_v2 / se_a_tebd_v2: DeePMD-kit TF's se_e2_a on a type embedding
# (see TYPE_EMBEDDED_ALIASES)
CANONICAL = {"se_a": "se_e2_a", "se_r": "se_e2_r", "se_t": "se_e3", "se_a_3be": "se_e3",
             "se_a_ebd_v2": "se_e2_a", "se_a_tebd_v2": "se_e2_a",
             "dpa1": "se_atten"}
FITTING_SCHEMAS = {"ener": FITTING_ENER, "dipole": FITTING_DIPOLE, "polar": FITTING_POLAR}
LR_SCHEMAS = {"exp": LEARNING_RATE_EXP}
LOSS_SCHEMAS = {"ener": LOSS_ENER, "tensor": LOSS_TENSOR}
# the descriptors built on a type embedding (model.type_embedding applies to them)
ATTENTION_DESCRIPTORS = ("se_atten", "se_atten_v2")
# the descriptors that can take model.type_embedding (se_e2_a then is DeePMD-kit's se_e2_a_tebd)
TYPE_EMBEDDED_DESCRIPTORS = ATTENTION_DESCRIPTORS + ("se_e2_a",)
# descriptor kinds DeePMD-kit has that dpkeras does not implement yet
KNOWN_DESCRIPTORS = ["se_a_mask", "dpa2", "dpa3", "se_e3_tebd"]
# names that mean "se_e2_a with a type embedding": without a model.type_embedding section
# DeePMD-kit's TF backend builds its default one with a linear activation
TYPE_EMBEDDED_ALIASES = ("se_a_ebd_v2", "se_a_tebd_v2")


def fail(path, msg):
    """Raise the one-line error of ``input.json`` key ``path``."""
    raise DPKerasError(f"input.json: {path}: {msg}")


def apply_schema(section, schema, path):
    """Check ``section``'s keys against ``schema``; return a copy with the defaults filled."""
    if not isinstance(section, dict):
        fail(path, f"expected an object, got {type(section).__name__}")
    out = {}
    for key, value in section.items():
        if key.startswith("_") or key == "@comment":  # DeePMD-kit comments ("_comment")
            continue
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            fail(f"{path}.{key}", f"unknown key{hint} (known keys: {', '.join(sorted(schema))})")
        spec = schema[key]
        _check_type(f"{path}.{key}", key, value, spec)
        if isinstance(spec, Unsupported):
            if value != spec.default:
                fail(f"{path}.{key}", f"{key} = {json.dumps(value)} {spec.why}; remove the key "
                      f"or set it to {json.dumps(spec.default)}")
        out[key] = value
    for key, spec in schema.items():
        if key in out:
            continue
        if spec is REQUIRED:
            fail(f"{path}.{key}", "required key is missing")
        out[key] = copy.deepcopy(spec.default if isinstance(spec, Unsupported) else spec)
    return out


# number keys that also take one number per type
_PER_TYPE_NUMBERS = ("scale",)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_type(path, key, value, spec):
    """A value of the kind of its default: a number where the default is a number, a list where
    it is a list (``None`` defaults and strings take anything the section's checks accept)."""
    if isinstance(spec, Unsupported) or spec is REQUIRED or spec is None:
        return
    if _is_number(spec) and not _is_number(value) and not (
            key in _PER_TYPE_NUMBERS and isinstance(value, list)):
        hint = f"; write {value} without quotes" if isinstance(value, str) and _parses(value) \
            else ""
        fail(path, f"expected a number, got {json.dumps(value)} "
             f"({type(value).__name__}){hint}")
    if isinstance(spec, list) and not isinstance(value, list):
        hint = f"; write [{value}]" if isinstance(value, str) and all(
            _parses(v) for v in value.split(",")) else ""
        fail(path, f"expected a list, got {json.dumps(value)} ({type(value).__name__}){hint}")


def _parses(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def typed_section(section, schemas, path, default_type, what):
    """A section with a ``type`` key: the schema of that type (``schemas[type]``) applied."""
    if not isinstance(section, dict):
        fail(path, f"expected an object, got {type(section).__name__}")
    kind = section.get("type", default_type)
    if kind not in schemas:
        if what == "descriptor" and kind in KNOWN_DESCRIPTORS:
            fail(f"{path}.type", f"descriptor {kind!r} is not implemented in dpkeras yet "
                  f"(available: {', '.join(sorted(schemas))})")
        close = difflib.get_close_matches(str(kind), list(schemas), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        fail(f"{path}.type", f"unknown {what} type {kind!r}{hint} "
              f"(available: {', '.join(sorted(schemas))})")
    out = apply_schema(dict(section, type=kind), schemas[kind], path)
    return out
