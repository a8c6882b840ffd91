"""The ``model`` section: validation of descriptor, type embedding and fitting net sections
(:func:`normalize_model`) and their split into layer constructor arguments
(:func:`model_kwargs`)."""

import json

from dpkeras.config.schema import (
    ATTENTION_DESCRIPTORS, CANONICAL, DESCRIPTOR_SCHEMAS, FITTING_ALIASES, FITTING_SCHEMAS, MODEL,
    TYPE_EMBEDDED_ALIASES, TYPE_EMBEDDED_DESCRIPTORS, TYPE_EMBEDDING, Unsupported, apply_schema,
    fail, typed_section)


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
        fail(f"{path}.sel", f"expected a list of {ntypes} non-negative integers (one per "
              f"element of type_map), got {json.dumps(sel)}")
    _check_common(d, ntypes, path)


def _check_hybrid(d, ntypes, path):
    subs = d["list"]
    if not isinstance(subs, list) or not subs:
        fail(f"{path}.list", "expected a non-empty list of descriptor sections")
    out = []
    for k, sub in enumerate(subs):
        p = f"{path}.list[{k}]"
        if isinstance(sub, dict) and sub.get("type") == "hybrid":
            fail(f"{p}.type", "a hybrid descriptor cannot contain another hybrid")
        sub = typed_section(sub, DESCRIPTOR_SCHEMAS, p, None, "descriptor")
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
            fail(f"{path}.list[{k}].type", f"a hybrid {why} shares one type embedding among "
                  f"its members, which {sub['type']} cannot take (DeePMD-kit's TF backend "
                  "neither); combine se_e2_a, se_atten and se_atten_v2 only")


def check_widths(section, path, key="neuron"):
    """Layer widths: a list of positive integers (a zero-width layer would silently train)."""
    w = section.get(key)
    if not isinstance(w, list) or not all(isinstance(n, int) and not isinstance(n, bool)
                                          and n > 0 for n in w):
        fail(f"{path}.{key}", f"expected a list of positive integers (layer widths), got "
             f"{json.dumps(w)}")


def _check_common(d, ntypes, path):
    """Checks every descriptor shares: cut-offs, widths, axis_neuron, exclude_types,
    precision."""
    check_widths(d, path)
    if not d["neuron"]:
        fail(f"{path}.neuron", "expected at least one embedding layer")
    if not 0 <= d["rcut_smth"] < d["rcut"]:
        fail(f"{path}.rcut_smth", f"need 0 <= rcut_smth < rcut, got rcut_smth={d['rcut_smth']}"
              f", rcut={d['rcut']}")
    if "axis_neuron" in d and d["axis_neuron"] > d["neuron"][-1]:
        fail(f"{path}.axis_neuron", f"axis_neuron {d['axis_neuron']} exceeds the last "
              f"embedding width {d['neuron'][-1]}")
    for pair in d["exclude_types"]:
        if len(pair) != 2 or not all(0 <= t < ntypes for t in pair):
            fail(f"{path}.exclude_types", f"{pair} is not a pair of type indices < {ntypes}")
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
        fail(path, f"sel = {json.dumps(sel)}: expected \"auto\" or \"auto:FACTOR\" (e.g. "
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
        fail(f"{path}.sel", "expected a positive integer (all neighbor types together) or a "
              f"list of non-negative integers, got {json.dumps(sel)}")
    if "tebd_input_mode" in d:
        # the deprecated stripped_type_embedding wins over tebd_input_mode, as in DeePMD-kit
        strip = d.pop("stripped_type_embedding")
        if strip is not None:
            d["tebd_input_mode"] = "strip" if strip else "concat"
        if d["tebd_input_mode"] not in ("concat", "strip"):
            fail(f"{path}.tebd_input_mode", f"expected 'concat' or 'strip', got "
                  f"{json.dumps(d['tebd_input_mode'])}")
    _check_common(d, ntypes, path)


def _check_precision(d, path):
    """``default`` is float64 (DeePMD-kit's default); float32 networks compute in float32 between
    float64 environment matrices and float64 energies/forces, as DeePMD-kit's TF backend."""
    if d["precision"] not in ("default", "float64", "float32"):
        fail(f"{path}.precision", f"precision {d['precision']!r} is not supported; use "
              "'float64' (or 'default') or 'float32'")
    d["precision"] = "float64" if d["precision"] == "default" else d["precision"]


def _check_trainable(section, nlayers, path):
    """``trainable``: a bool, or (fitting nets) one bool per layer, hidden layers then output."""
    t = section["trainable"]
    if isinstance(t, bool) or (isinstance(t, list) and len(t) == nlayers and
                               all(isinstance(x, bool) for x in t)):
        return
    fail(f"{path}.trainable", f"expected true/false or a list of {nlayers} booleans (one per "
          f"layer, the output layer last), got {json.dumps(t)}")


# DeePMD-kit model types other than "standard", for the refusal message
MODEL_TYPES = {"linear_ener": "linear combination of models", "pairwise_dprc":
               "pairwise DPRc QM/MM model", "frozen": "frozen model", "pairtab": "pair table",
               "zbl": "DP + ZBL"}


def normalize_model(model):
    """Validate the ``model`` section and fill defaults."""
    kind = model.get("type", "standard") if isinstance(model, dict) else "standard"
    # "multi": DeePMD-kit 2.2's multi-task model, whose per-head sections are standard ones
    if kind not in ("standard", "multi"):
        fail("model.type", f"{json.dumps(kind)} models (DeePMD-kit's "
             f"{MODEL_TYPES.get(kind, 'model type ' + str(kind))}) are not implemented in "
             "dpkeras; it trains 'standard' models (one descriptor, one fitting net)")
    if isinstance(model, dict) and "type_map" not in model:
        fail("model.type_map", "required by dpkeras (DeePMD-kit's TF backend can do without "
             "and then uses the type indices of type.raw as they are); add \"type_map\": the "
             "element names in the order of the indices in type.raw")
    m = apply_schema(model, MODEL, "model")
    tm = m["type_map"]
    if not isinstance(tm, list) or not tm or not all(isinstance(t, str) for t in tm):
        fail("model.type_map", "expected a non-empty list of element names")
    if len(set(tm)) != len(tm):
        fail("model.type_map", f"duplicate element names in {tm}")
    m["descriptor"] = typed_section(m["descriptor"], DESCRIPTOR_SCHEMAS, "model.descriptor",
                                    None, "descriptor")
    kind = m["descriptor"]["type"]
    members = m["descriptor"].get("list") if kind == "hybrid" else [m["descriptor"]]
    if m["type_embedding"] is None and any(isinstance(x, dict) and x.get("type") in
                                           TYPE_EMBEDDED_ALIASES for x in members or []):
        m["type_embedding"] = {"activation_function": "linear"}
    m["descriptor"]["type"] = CANONICAL.get(kind, kind)
    _check_descriptor(m["descriptor"], len(tm), "model.descriptor")
    if m["type_embedding"] is not None:
        if m["descriptor"]["type"] == "hybrid":
            _check_type_embedded_members(m["descriptor"], "model.descriptor",
                                         "with model.type_embedding")
        elif m["descriptor"]["type"] not in TYPE_EMBEDDED_DESCRIPTORS:
            fail("model.type_embedding", "a type embedding is only implemented for the "
                  "se_e2_a, se_atten and se_atten_v2 descriptors (and a hybrid of them), not "
                  f"{m['descriptor']['type']!r}; remove the section")
        m["type_embedding"] = apply_schema(m["type_embedding"], TYPE_EMBEDDING,
                                           "model.type_embedding")
        check_widths(m["type_embedding"], "model.type_embedding")
        _check_precision(m["type_embedding"], "model.type_embedding")
    fit = m["fitting_net"]
    if isinstance(fit, dict):
        aliases = FITTING_ALIASES.get(fit.get("type", "ener"), {})
        fit = {aliases.get(k, k): v for k, v in fit.items()}
    m["fitting_net"] = typed_section(fit, FITTING_SCHEMAS, "model.fitting_net",
                                      "ener", "fitting_net")
    _check_precision(m["fitting_net"], "model.fitting_net")
    check_widths(m["fitting_net"], "model.fitting_net")
    if m["fitting_net"]["precision"] != "float64" and m["fitting_net"]["type"] != "ener":
        fail("model.fitting_net.precision", f"float32 is only implemented for the ener "
              f"fitting, not {m['fitting_net']['type']!r}; use 'float64'")
    if "trainable" in m["fitting_net"]:
        _check_trainable(m["fitting_net"], len(m["fitting_net"]["neuron"]) + 1,
                         "model.fitting_net")
    if m["fitting_net"]["type"] in ("dipole", "polar"):
        if m["type_embedding"] is not None:
            fail("model.type_embedding", f"the {m['fitting_net']['type']} fitting is "
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
        fail(f"{path}.layer_name", f"expected a list of {n} names or nulls (one per layer, "
              f"the output layer last), got {json.dumps(names)}")


def _check_tensor_fitting(f, d, ntypes):
    """``dipole``/``polar``: se_e2_a descriptor, ``sel_type`` (int, list or None = all types)
    and ``scale`` (float or one per type) normalized to lists."""
    path = "model.fitting_net"
    if d["type"] != "se_e2_a":
        fail(f"{path}.type", f"the {f['type']} fitting is implemented for the se_e2_a "
              f"descriptor only (it needs its rotation matrix), not {d['type']!r}")
    sel = f["sel_type"]
    if sel is None:
        sel = list(range(ntypes))
    elif isinstance(sel, int) and not isinstance(sel, bool):
        sel = [sel]
    if not isinstance(sel, list) or not sel or not all(
            isinstance(t, int) and 0 <= t < ntypes for t in sel):
        fail(f"{path}.sel_type", f"expected type indices < {ntypes} (an int or a list), got "
              f"{json.dumps(f['sel_type'])}")
    f["sel_type"] = sorted(set(sel))
    if "scale" in f:
        sc = f["scale"]
        if isinstance(sc, (int, float)) and not isinstance(sc, bool):
            sc = [float(sc)] * ntypes
        if not isinstance(sc, list) or len(sc) != ntypes or not all(
                isinstance(x, (int, float)) for x in sc):
            fail(f"{path}.scale", f"expected a number or a list of {ntypes} numbers (one per "
                  f"type), got {json.dumps(f['scale'])}")
        f["scale"] = [float(x) for x in sc]


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
