"""A single-task ``input.json``: ``model``, ``learning_rate``, ``loss``, ``training``."""

import json

from dpkeras.config.model import normalize_model
from dpkeras.config.schema import (
    DATA, LOSS_SCHEMAS, LR_SCHEMAS, TOP, TRAINING, VALIDATION_DATA, apply_schema, fail,
    typed_section)


def _normalize_data(d, schema, path):
    if isinstance(d, (list, str)):
        d = {"systems": d}
    out = apply_schema(d, schema, path)
    if isinstance(out["systems"], str):
        out["systems"] = [out["systems"]]
    if out.get("auto_prob_style") is not None:
        out["auto_prob"] = out.pop("auto_prob_style")
    out.pop("auto_prob_style", None)
    if out.get("sys_weights") is not None:
        out["sys_probs"] = out.pop("sys_weights")
    out.pop("sys_weights", None)
    return out


def normalize_single(config):
    """Validate a whole single-task ``input.json`` dict; return a normalized copy."""
    top = apply_schema(config, TOP, "")
    out = {"model": normalize_model(mixed_precision_model(top["model"], top["training"]))}
    out["learning_rate"] = typed_section(top["learning_rate"], LR_SCHEMAS, "learning_rate",
                                          "exp", "learning_rate")
    _check_learning_rate(out["learning_rate"])
    tensor = out["model"]["fitting_net"]["type"] in ("dipole", "polar")
    out["loss"] = typed_section(top["loss"], LOSS_SCHEMAS, "loss",
                                 "tensor" if tensor else "ener", "loss")
    if tensor != (out["loss"]["type"] == "tensor"):
        fail("loss.type", f"loss {out['loss']['type']!r} does not fit the "
              f"{out['model']['fitting_net']['type']!r} fitting (use 'tensor' for dipole/polar, "
              "'ener' for ener)")
    if out["loss"]["type"] == "tensor":
        for key in ("pref", "pref_atomic"):
            v = out["loss"][key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                fail(f"loss.{key}", f"expected a non-negative number, got {json.dumps(v)}")
        if out["loss"]["pref"] == 0 and out["loss"]["pref_atomic"] == 0:
            fail("loss.pref", "pref and pref_atomic are both 0; give one a positive weight")
    t = apply_schema(_stop_batch(top["training"]), TRAINING, "training")
    t.pop("stop_batch")
    t["training_data"] = _normalize_data(t["training_data"], DATA, "training.training_data")
    if t["validation_data"] is not None:
        t["validation_data"] = _normalize_data(t["validation_data"], VALIDATION_DATA,
                                               "training.validation_data")
    if not isinstance(t["numb_steps"], int) or t["numb_steps"] < 0:
        fail("training.numb_steps", f"expected a non-negative integer, got {t['numb_steps']!r}")
    for key in ("disp_freq", "save_freq"):
        if not isinstance(t[key], int) or t[key] <= 0:
            fail(f"training.{key}", f"expected a positive integer, got {t[key]!r}")
    out["training"] = t
    return out


MIXED_PRECISION = {"output_prec": ("float32",), "compute_prec": ("float16", "bfloat16")}


def mixed_precision_model(model, training):
    """DeePMD-kit's ``training.mixed_precision`` (TF backend): the networks are stored in
    ``output_prec`` (float32) and their hidden layers computed in ``compute_prec`` (float16 or
    bfloat16; :func:`dpkeras.network.compute_precision`). Checks the option as DeePMD-kit does
    and returns the raw model section with every network's ``precision`` set to float32."""
    mp = training.get("mixed_precision") if isinstance(training, dict) else None
    if mp is None:
        return model
    if not isinstance(mp, dict) or sorted(mp) != sorted(MIXED_PRECISION):
        fail("training.mixed_precision", f"expected {{\"output_prec\": \"float32\", "
             f"\"compute_prec\": \"float16\" or \"bfloat16\"}}, got {json.dumps(mp)}")
    if any(mp[k] not in allowed for k, allowed in MIXED_PRECISION.items()):
        fail("training.mixed_precision", f"unsupported option [output_prec, compute_prec]: "
             f"[{mp['output_prec']}, {mp['compute_prec']}]; supported, as by DeePMD-kit's TF "
             "backend: [float32, float16] and [float32, bfloat16]")
    if not isinstance(model, dict):
        return model
    model = json.loads(json.dumps(model))
    for key in ("descriptor", "fitting_net", "type_embedding"):
        sec = model.get(key)
        if not isinstance(sec, dict):
            continue
        members = sec.get("list") if sec.get("type") == "hybrid" else [sec]
        for m in members if isinstance(members, list) else []:
            if isinstance(m, dict):
                m["precision"] = mp["output_prec"]
    return model


def _check_learning_rate(lr):
    """Rates positive, ``decay_steps`` a positive integer, ``decay_rate`` in (0, 1]."""
    for key in ("start_lr", "stop_lr"):
        if not lr[key] > 0:
            fail(f"learning_rate.{key}", f"expected a positive number, got {lr[key]}")
    if not isinstance(lr["decay_steps"], int) or lr["decay_steps"] <= 0:
        fail("learning_rate.decay_steps", f"expected a positive integer, got "
             f"{json.dumps(lr['decay_steps'])}")
    rate = lr.get("decay_rate")
    if rate is not None and not (isinstance(rate, (int, float)) and 0 < rate <= 1):
        fail("learning_rate.decay_rate", f"expected a number in (0, 1], got {json.dumps(rate)}")


def _stop_batch(training):
    """DeePMD-kit TF's ``stop_batch`` is ``numb_steps``."""
    if not isinstance(training, dict) or "stop_batch" not in training:
        return training
    t = dict(training)
    value = t.pop("stop_batch")
    if "numb_steps" in t and t["numb_steps"] != value:
        fail("training.stop_batch", f"{value} differs from training.numb_steps "
             f"{t['numb_steps']} (stop_batch is DeePMD-kit's older name of numb_steps); give "
             "one of them")
    t["numb_steps"] = value
    return t
