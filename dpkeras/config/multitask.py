"""Multi-task ``input.json``: DeePMD-kit's two input styles, normalized to one form.

TensorFlow style: ``model.type_map``, ``model.descriptor`` (and ``model.type_embedding``) shared
by every head, ``model.fitting_net_dict`` (one fitting net per head), ``loss_dict``,
``training.data_dict`` and the optional ``training.fitting_weight``.

PyTorch style: ``model.model_dict`` (per head ``type_map``, ``descriptor``, ``fitting_net``, ...;
a string value ``"NAME"`` or ``"NAME:0"`` stands for ``model.shared_dict.NAME``),
``model.shared_dict``, ``loss_dict``, ``training.data_dict`` and the optional
``training.model_prob``.

Both normalize to::

    {"model": {"model_dict": {head: normalized single-task model section}},
     "learning_rate": {...},
     "loss_dict": {head: normalized loss section},
     "training": {<training keys>, "data_dict": {head: {"training_data", "validation_data"}},
                  "model_prob": {head: probability}}}

Every head is validated as a single-task input of its own (so every single-task check applies)
and all heads must have the same ``type_map``, ``descriptor`` and ``type_embedding``: one
descriptor shared by all heads. Weights (``fitting_weight`` / ``model_prob``) become
probabilities summing to 1; a head missing from a given weight dict, or with a weight <= 0, gets
0 and is not trained (a warning says so). Without weights: equal weights (TensorFlow style) or
weights proportional to the number of training systems (PyTorch style), as in DeePMD-kit.
"""

import copy
import json
import logging

from dpkeras.config.schema import fail as _fail
from dpkeras.config.single import normalize_single
from dpkeras.errors import DPKerasError

log = logging.getLogger("dpkeras")

DEFAULT_HEAD = "Default"   # the one branch of a single-task model (DeePMD-kit's name)
SHARED_MODEL_KEYS = ("type_map", "descriptor", "type_embedding")
DATA_DICT_KEYS = ("training_data", "validation_data", "stat_file", "stat_file_mode")


def is_multitask_input(config):
    """Whether a raw input dict is multi-task (``model.fitting_net_dict`` or ``model_dict``)."""
    model = config.get("model") if isinstance(config, dict) else None
    return isinstance(model, dict) and (model.get("fitting_net_dict") is not None or
                                        model.get("model_dict") is not None)


def is_multitask(config):
    """Whether a normalized input (or its ``model`` section) is multi-task."""
    model = config.get("model", config)
    return isinstance(model, dict) and model.get("model_dict") is not None


def _check_keys(keys, heads, path, what):
    missing = [h for h in heads if h not in keys]
    extra = [k for k in keys if k not in heads]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if extra:
            parts.append(f"keys {extra} that are not heads")
        _fail(path, f"{' and '.join(parts)}; its keys must be the heads of {what} "
              f"({list(heads)})")


def _as_dict(value, path):
    if not isinstance(value, dict) or not value:
        _fail(path, f"expected a non-empty object (one entry per head), got {json.dumps(value)}")
    return value


def _tf_heads(model):
    """``{head: raw single-task model section}`` and the head path prefix, TF style."""
    if model.get("model_dict") is not None or model.get("shared_dict") is not None:
        _fail("model.fitting_net_dict", "give either model.fitting_net_dict (with a shared "
              "model.descriptor) or model.model_dict (with model.shared_dict), not both")
    if model.get("fitting_net") is not None:
        _fail("model.fitting_net", "single-task key in a multi-task input (model.fitting_net_dict "
              "is given); move it into model.fitting_net_dict.<head> or remove it")
    fits = _as_dict(model["fitting_net_dict"], "model.fitting_net_dict")
    common = {k: v for k, v in model.items() if k != "fitting_net_dict"}
    return {h: dict(copy.deepcopy(common), fitting_net=copy.deepcopy(f))
            for h, f in fits.items()}


def _pt_heads(model):
    """``{head: raw single-task model section}``, PyTorch style (shared_dict references
    resolved)."""
    extra = [k for k in model if k not in ("model_dict", "shared_dict") and not k.startswith("_")]
    if extra:
        _fail(f"model.{extra[0]}", "with model.model_dict, every model setting goes inside "
              "model.model_dict.<head> (shared ones in model.shared_dict); single- and "
              "multi-task keys cannot be mixed")
    shared = model.get("shared_dict") or {}
    if not isinstance(shared, dict):
        _fail("model.shared_dict", f"expected an object, got {json.dumps(shared)}")
    heads = {}
    for h, sec in _as_dict(model["model_dict"], "model.model_dict").items():
        if not isinstance(sec, dict):
            _fail(f"model.model_dict.{h}", f"expected an object, got {json.dumps(sec)}")
        sec = copy.deepcopy(sec)
        for key, value in list(sec.items()):
            if not isinstance(value, str) or key == "type":
                continue
            path = f"model.model_dict.{h}.{key}"
            name, _, level = value.partition(":")
            if name not in shared:
                if key in SHARED_MODEL_KEYS + ("fitting_net",):
                    _fail(path, f"{value!r} is not a key of model.shared_dict (its keys: "
                          f"{sorted(shared)})")
                continue
            if level not in ("", "0"):
                _fail(path, f"share level {level} is not implemented; dpkeras shares the whole "
                      f"descriptor (level 0): write {name!r}")
            if key == "fitting_net":
                _fail(path, "sharing a whole fitting net through shared_dict is not "
                      "implemented; share layers with fitting_net.layer_name instead")
            sec[key] = copy.deepcopy(shared[name])
        heads[h] = sec
    return heads


def _rewrite(exc, head, style):
    """A single-task error message with the paths of the head it came from."""
    msg = str(exc)
    mpath = f"model.model_dict.{head}." if style == "pt" else "model."
    for old, new in ((": model.fitting_net", f": {mpath}fitting_net_dict.{head}"
                      if style == "tf" else f": {mpath}fitting_net"),
                     (": model.", f": {mpath}"),
                     (": loss", f": loss_dict.{head}"),
                     (": training.training_data", f": training.data_dict.{head}.training_data"),
                     (": training.validation_data",
                      f": training.data_dict.{head}.validation_data")):
        if old in msg:
            return DPKerasError(msg.replace(old, new, 1))
    return exc


def _weights(t, heads, data_dict, style):
    fw, mp = t.pop("fitting_weight", None), t.pop("model_prob", None)
    if fw is not None and mp is not None and fw != {} and mp != {}:
        _fail("training.model_prob", "give either training.fitting_weight or "
              "training.model_prob, not both")
    given, key = (fw, "fitting_weight") if fw not in (None, {}) else (mp, "model_prob")
    if given in (None, {}):
        if style == "tf":
            w = {h: 1.0 for h in heads}
        else:   # DeePMD-kit's PyTorch default: proportional to the number of systems
            w = {h: float(len(data_dict[h]["training_data"]["systems"])) for h in heads}
    else:
        if not isinstance(given, dict):
            _fail(f"training.{key}", f"expected an object (head: weight), got "
                  f"{json.dumps(given)}")
        extra = [k for k in given if k not in heads]
        if extra:
            _fail(f"training.{key}", f"keys {extra} are not heads (heads: {list(heads)})")
        w = {}
        for h in heads:
            v = given.get(h, 0.0)
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                _fail(f"training.{key}.{h}", f"expected a number, got {json.dumps(v)}")
            if v <= 0:
                log.warning("training.%s: head %r has no positive weight (%s); it is not "
                            "trained", key, h, v if h in given else "missing")
            w[h] = max(float(v), 0.0)
    total = sum(w.values())
    if total <= 0:
        _fail(f"training.{key}", "no head has a positive weight; nothing would be trained")
    return {h: v / total for h, v in w.items()}


def normalize_multitask(config):
    """Validate a raw multi-task input; return the normalized form (module docstring)."""
    if not isinstance(config, dict):
        _fail("", "expected an object")
    model = config["model"]
    style = "tf" if model.get("fitting_net_dict") is not None else "pt"
    heads = _tf_heads(model) if style == "tf" else _pt_heads(model)
    what = "model.fitting_net_dict" if style == "tf" else "model.model_dict"
    if "loss" in config:
        _fail("loss", "single-task key in a multi-task input; give one loss per head in "
              "loss_dict")
    loss_dict = config.get("loss_dict") or {}
    if not isinstance(loss_dict, dict):
        _fail("loss_dict", f"expected an object (head: loss section), got "
              f"{json.dumps(loss_dict)}")
    extra = [k for k in loss_dict if k not in heads]
    if extra:
        _fail("loss_dict", f"keys {extra} are not heads of {what} ({list(heads)})")
    training = config.get("training")
    if not isinstance(training, dict):
        _fail("training", "required object is missing")
    for key in ("training_data", "validation_data"):
        if key in training:
            _fail(f"training.{key}", "single-task key in a multi-task input; give the data "
                  "of each head in training.data_dict.<head>.training_data / validation_data")
    if "data_dict" not in training:
        _fail("training.data_dict", f"required in multi-task mode (one entry per head: "
              f"{list(heads)})")
    data_dict = _as_dict(training["data_dict"], "training.data_dict")
    _check_keys(list(data_dict), list(heads), "training.data_dict", what)
    common = {k: v for k, v in training.items() if k != "data_dict"}
    top_extra = {k: v for k, v in config.items()
                 if k not in ("model", "loss_dict", "training", "learning_rate")}
    out_models, out_loss, out_data, common_out = {}, {}, {}, None
    for h in heads:
        dd = data_dict[h]
        if not isinstance(dd, dict):
            _fail(f"training.data_dict.{h}", f"expected an object with training_data, got "
                  f"{json.dumps(dd)}")
        bad = [k for k in dd if k not in DATA_DICT_KEYS and not k.startswith("_")]
        if bad:
            _fail(f"training.data_dict.{h}.{bad[0]}", f"unknown key (known keys: "
                  f"{', '.join(DATA_DICT_KEYS)})")
        if "training_data" not in dd:
            _fail(f"training.data_dict.{h}.training_data", "required key is missing")
        t = dict(copy.deepcopy(common), **{k: copy.deepcopy(v) for k, v in dd.items()
                                          if not k.startswith("_")})
        t.pop("fitting_weight", None)
        t.pop("model_prob", None)
        single = dict(top_extra, model=heads[h], training=t,
                      learning_rate=config.get("learning_rate", {}))
        if h in loss_dict:
            single["loss"] = loss_dict[h]
        try:
            norm = normalize_single(single)
        except DPKerasError as exc:
            raise _rewrite(exc, h, style) from None
        out_models[h] = norm["model"]
        out_loss[h] = norm["loss"]
        out_data[h] = {"training_data": norm["training"].pop("training_data"),
                       "validation_data": norm["training"].pop("validation_data")}
        for k in ("stat_file", "stat_file_mode"):
            norm["training"].pop(k, None)
        common_out = common_out or norm
    first = next(iter(heads))
    for h in heads:
        for key in SHARED_MODEL_KEYS:
            if out_models[h].get(key) != out_models[first].get(key):
                path = (f"model.model_dict.{h}.{key}" if style == "pt" else f"model.{key}")
                _fail(path, f"differs from head {first!r}'s: all heads share one descriptor, "
                      "so type_map, descriptor and type_embedding must be the same (refer to "
                      "one model.shared_dict entry)")
    t = common_out["training"]
    t["data_dict"] = out_data
    t["model_prob"] = _weights(dict(common), list(heads), out_data, style)
    return {"model": {"model_dict": out_models}, "learning_rate": common_out["learning_rate"],
            "loss_dict": out_loss, "training": t}


def complete_from_frozen(config, frozen_model):
    """``--init_frz_model``: fill a raw multi-task input from the frozen model's ``model``
    section (normalized, multi-task): an empty or absent shared ``descriptor`` / ``type_map`` /
    ``type_embedding`` and ``{}`` heads that the frozen model has are taken from it. New heads
    must be given in full, with their own ``loss_dict`` entry."""
    if not is_multitask_input(config):
        _fail("model", "--init_frz_model needs a multi-task input (model.fitting_net_dict or "
              "model.model_dict)")
    old = frozen_model["model_dict"]
    ref = next(iter(old.values()))
    config = copy.deepcopy(config)
    model = config["model"]
    loss_dict = config.get("loss_dict") or {}
    if model.get("fitting_net_dict") is not None:
        for key in SHARED_MODEL_KEYS:
            if model.get(key) in (None, {}) and ref.get(key) is not None:
                model[key] = copy.deepcopy(ref[key])
        sections, where = model["fitting_net_dict"], "model.fitting_net_dict"
        fill = {h: copy.deepcopy(old[h]["fitting_net"]) for h in old}
    else:
        sections, where = model["model_dict"], "model.model_dict"
        fill = {}
        for h, sec in sections.items():
            if isinstance(sec, dict) and sec:
                for key in SHARED_MODEL_KEYS:
                    if sec.get(key) in (None, {}) and ref.get(key) is not None:
                        sec[key] = copy.deepcopy(ref[key])
        fill = {h: copy.deepcopy(old[h]) for h in old}
    for h, sec in list(sections.items()):
        if sec in (None, {}):
            if h not in fill:
                _fail(f"{where}.{h}", f"empty, and the frozen model has no head {h!r} (its "
                      f"heads: {list(old)}); give this head in full")
            sections[h] = fill[h]
        elif h not in old and h not in loss_dict:
            _fail(f"loss_dict.{h}", f"missing: {h!r} is a new head (not in the frozen model, "
                  f"whose heads are {list(old)}); give its loss")
    return config
