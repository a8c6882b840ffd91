"""DeePMD-kit's backend-neutral ``.dp`` model file (read and write).

A ``.dp`` file is HDF5: the root attribute ``json`` holds DeePMD-kit's versioned ``serialize()``
dict, and every array under an ``@variables`` key is replaced by the path of a root dataset. The
layout of the dicts (``se_e2_a``, ``se_e2_r``/``se_r``, ``se_e3``, ``dpa1`` = TF ``se_atten``
in concat or strip mode, ``hybrid`` of the per-type kinds; ``ener`` fitting) is described in
``docs/deepmd_serialize.md``. Files written here are what DeePMD-kit's TF backend serializes for
the same model; they convert with ``dp convert-backend model.dp model.pb`` and evaluate
identically in DeePMD-kit. ``smooth_type_embedding`` (``se_atten_v2``) is refused both ways, as
DeePMD-kit's TF backend cannot serialize it either.
"""

import datetime
import json
import os

import numpy as np

from dpkeras import __version__
from dpkeras.atomic import atomic_file
from dpkeras.errors import DPKerasError


# --- HDF5 container --------------------------------------------------------------------------
def load_dict(path):
    """The serialized dict of a ``.dp`` file with arrays resolved."""
    import h5py

    if not os.path.isfile(path):
        raise DPKerasError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            tree = json.loads(f.attrs["json"])

            def resolve(node, in_vars=False):
                if isinstance(node, dict):
                    return {k: resolve(v, in_vars or k == "@variables") for k, v in node.items()}
                if isinstance(node, list):
                    return [resolve(v, in_vars) for v in node]
                if in_vars and isinstance(node, str):
                    return np.asarray(f[node][()])
                return node

            return resolve(tree)
    except (OSError, KeyError, ValueError) as exc:
        raise DPKerasError(f"{path}: not a readable DeePMD-kit .dp file ({exc}); the file is "
                           "corrupt or truncated") from None


def save_dict(path, data):
    """Write a serialized dict as a ``.dp`` file (atomically)."""
    import h5py

    counter = [0]
    arrays = {}

    def flatten(node, in_vars=False):
        if isinstance(node, dict):
            return {k: flatten(v, in_vars or k == "@variables") for k, v in node.items()}
        if isinstance(node, list):
            return [flatten(v, in_vars) for v in node]
        if in_vars and node is not None:
            name = "/variable_%04d" % counter[0]
            counter[0] += 1
            arrays[name] = np.asarray(node)
            return name
        return node

    tree = flatten(data)
    with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
        for name, arr in arrays.items():
            f.create_dataset(name, data=arr)
        f.attrs["json"] = json.dumps(tree, separators=(",", ":"))


# --- networks --------------------------------------------------------------------------------
def _layer(w, b, idt, activation, resnet):
    return {"@class": "Layer", "@version": 2, "bias": b is not None,
            "use_timestep": idt is not None, "activation_function": activation,
            "resnet": resnet, "precision": "float64", "trainable": True,
            "@variables": {"w": w, "b": b, "idt": idt}}


def _embedding_net(weights, neuron, activation, resnet_dt, in_dim=1):
    layers = [_layer(w, b, idt, activation, True) for w, b, idt in
              zip(weights["w"], weights["b"], weights["idt"])]
    return {"@class": "EmbeddingNetwork", "@version": 2, "in_dim": in_dim, "neuron": list(neuron),
            "activation_function": activation, "resnet_dt": resnet_dt,
            "bias": weights["b"][0] is not None, "precision": "float64", "layers": layers}


def _fitting_net(weights, in_dim, neuron, activation, resnet_dt, out_dim=1):
    layers = []
    prev = in_dim
    for k, (w, b, idt) in enumerate(zip(weights["w"], weights["b"], weights["idt"])):
        # DeePMD-kit's numpy backend adds a residual wherever resnet is true and the width is
        # kept or doubled; TF (and dpkeras) only for kept widths after the first layer
        layers.append(_layer(w, b, idt, activation, k > 0 and prev == w.shape[1]))
        prev = w.shape[1]
    layers.append(_layer(weights["w_out"], weights["b_out"], None, "none", False))
    return {"@class": "FittingNetwork", "@version": 1, "in_dim": in_dim, "out_dim": out_dim,
            "neuron": list(neuron), "activation_function": activation, "resnet_dt": resnet_dt,
            "precision": "float64", "bias_out": True, "layers": layers}


def _read_net(net, path, kind):
    layers = net["layers"]
    hidden = layers[:-1] if kind == "fitting" else layers
    out = {"w": [], "b": [], "idt": []}
    prev = net["in_dim"]
    for k, layer in enumerate(hidden):
        v = layer["@variables"]
        w = np.asarray(v["w"], np.float64)
        width = w.shape[1]
        ours = (prev == width or width == 2 * prev) if kind == "embedding" else \
            (k > 0 and prev == width)
        theirs = bool(layer.get("resnet")) and (prev == width or width == 2 * prev)
        if ours != theirs:
            raise DPKerasError(f"{path}: {kind} layer {k} ({prev} -> {width}) has a residual "
                               "connection that dpkeras' TF-compatible layer rules do not "
                               "reproduce; this model cannot be loaded exactly")
        out["w"].append(w)
        out["b"].append(None if v.get("b") is None else np.asarray(v["b"], np.float64))
        idt = v.get("idt")
        if idt is not None and not ours:
            raise DPKerasError(f"{path}: {kind} layer {k} has a timestep on a non-residual "
                               "layer, which dpkeras does not support")
        out["idt"].append(None if idt is None else np.asarray(idt, np.float64).reshape(-1))
        prev = width
    if kind == "fitting":
        v = layers[-1]["@variables"]
        out["w_out"] = np.asarray(v["w"], np.float64)
        out["b_out"] = None if v.get("b") is None else np.asarray(v["b"], np.float64)
    return out


def _activation(name):
    return "linear" if name in (None, "none") else name


# --- reading descriptors ---------------------------------------------------------------------
_SE_KINDS = {"se_e2_a": "se_e2_a", "se_a": "se_e2_a", "se_e2_r": "se_e2_r", "se_r": "se_e2_r",
             "se_e3": "se_e3"}
_SUPPORTED = "se_e2_a, se_e2_r, se_e3, dpa1/se_atten, hybrid of se_e2_a/se_e2_r/se_e3"


def _read_se(d, path, ntypes):
    """``(config, weights)`` of an ``se_e2_a``/``se_e2_r``/``se_e3`` descriptor dict."""
    kind = _SE_KINDS[d["type"]]
    if d.get("env_protection", 0.0):
        raise DPKerasError(f"{path}: descriptor.env_protection is not supported yet")
    radial, three_body = kind == "se_e2_r", kind == "se_e3"
    ncol = 1 if radial else 4
    sel = [int(s) for s in d["sel"]]
    nnei = sum(sel)
    emb = d["embeddings"]
    embeddings = {}
    for idx, net in enumerate(emb["networks"]):
        if net is None:
            continue
        key = (idx,) if emb["ndim"] == 1 else (idx % ntypes, idx // ntypes)
        if three_body and key[0] > key[1]:
            continue   # placeholder: se_e3 has nets for neighbor-type pairs a <= b only
        embeddings[key] = _read_net(net, path, "embedding")
    excl = {tuple(sorted(p)) for p in d.get("exclude_types", [])}
    if emb["ndim"] == 2 and not three_body:
        embeddings = {k: v for k, v in embeddings.items() if tuple(sorted(k)) not in excl}
    config = {
        "type": kind, "sel": sel, "rcut": float(d["rcut"]),
        "rcut_smth": float(d["rcut_smth"]), "neuron": list(d["neuron"]),
        "resnet_dt": bool(d["resnet_dt"]),
        "exclude_types": [list(p) for p in d.get("exclude_types", [])],
        "set_davg_zero": bool(d.get("set_davg_zero", False)),
        "activation_function": d.get("activation_function", "tanh"),
        "trainable": bool(d.get("trainable", True)),
    }
    if not three_body:
        config["type_one_side"] = bool(d["type_one_side"])
    if not radial and not three_body:
        config["axis_neuron"] = int(d["axis_neuron"])
    weights = {
        "davg": np.asarray(d["@variables"]["davg"], np.float64).reshape(ntypes, nnei, ncol),
        "dstd": np.asarray(d["@variables"]["dstd"], np.float64).reshape(ntypes, nnei, ncol),
        "embeddings": embeddings,
    }
    return config, weights


def _read_dpa1(d, path, ntypes):
    """``(config, type_embedding config, weights)`` of a ``dpa1`` (``se_atten``) descriptor dict,
    in DeePMD-kit TF's conventions (which dpkeras follows)."""
    where = f"{path}: descriptor (dpa1)"
    if d.get("smooth_type_embedding"):
        raise DPKerasError(f"{where}: smooth_type_embedding = true (se_atten_v2) follows the "
                           "PyTorch/numpy convention, which differs from DeePMD-kit's TF one that "
                           "dpkeras implements; convert the TF .pb instead")
    for key, want in (("env_protection", 0.0), ("scaling_factor", 1.0), ("normalize", True),
                      ("temperature", None), ("concat_output_tebd", True),
                      ("use_econf_tebd", False)):
        if d.get(key, want) != want:
            raise DPKerasError(f"{where}: {key} = {d[key]!r} is not supported (only {want!r}, "
                               "as in DeePMD-kit's TF se_atten)")
    mode = d.get("tebd_input_mode", "concat")
    if mode not in ("concat", "strip"):
        raise DPKerasError(f"{where}: tebd_input_mode {mode!r} is not supported (concat, strip)")
    if mode == "strip" and d.get("type_one_side"):
        raise DPKerasError(f"{where}: tebd_input_mode 'strip' with type_one_side = true is not "
                           "supported (DeePMD-kit's TF backend cannot serialize it either)")
    te = d["type_embedding"]
    if te.get("padding") is False:
        raise DPKerasError(f"{where}: a type embedding without the padding row is not supported")
    te_net = te["embedding"]
    if int(te_net["in_dim"]) != ntypes:
        raise DPKerasError(f"{where}: type embedding input width {te_net['in_dim']} is not "
                           f"ntypes = {ntypes}")
    use_bias = bool(te.get("use_tebd_bias", d.get("use_tebd_bias", True)))
    te_config = {"neuron": list(te["neuron"]),
                 "activation_function": _activation(te.get("activation_function")),
                 "resnet_dt": bool(te.get("resnet_dt", False)), "use_tebd_bias": use_bias,
                 "trainable": bool(te.get("trainable", True))}
    tebd_dim = int(te["neuron"][-1])
    nets = d["embeddings"]["networks"]
    if d["embeddings"].get("ndim", 0) != 0 or len(nets) != 1:
        raise DPKerasError(f"{where}: expected one type-independent embedding net (ndim 0)")
    in_dim = 1 if mode == "strip" else 1 + tebd_dim * (1 if d.get("type_one_side") else 2)
    if int(nets[0]["in_dim"]) != in_dim:
        raise DPKerasError(f"{where}: embedding net input width {nets[0]['in_dim']}, expected "
                           f"{in_dim} for tebd_input_mode {mode!r}")
    nnei = int(np.sum(d["sel"]))
    weights = {
        "davg": np.asarray(d["@variables"]["davg"], np.float64).reshape(ntypes, nnei, 4),
        "dstd": np.asarray(d["@variables"]["dstd"], np.float64).reshape(ntypes, nnei, 4),
        "embeddings": {(): _read_net(nets[0], path, "embedding")},
        "type_embedding": _read_net(te_net, path, "embedding"),
        "attention": [],
    }
    if mode == "strip":
        strip = d["embeddings_strip"]["networks"]
        if len(strip) != 1 or int(strip[0]["in_dim"]) != 2 * tebd_dim:
            raise DPKerasError(f"{where}: expected one strip-mode type-pair net of input width "
                               f"{2 * tebd_dim} (neighbor and center type embeddings)")
        weights["embedding_strip"] = _read_net(strip[0], path, "embedding")
    att = d["attention_layers"]
    attn = int(d["attn"])
    for k, layer in enumerate(att.get("attention_layers", [])):
        a = layer["attention_layer"]
        if not a.get("bias", True) or a.get("num_heads", 1) != 1 or a.get("smooth"):
            raise DPKerasError(f"{where}: attention layer {k} has no bias, several heads or the "
                               "smooth variant, which dpkeras does not support")
        w_in = np.asarray(a["in_proj"]["@variables"]["w"], np.float64)
        b_in = np.asarray(a["in_proj"]["@variables"]["b"], np.float64)
        ln = layer["attn_layer_norm"]["@variables"]
        weights["attention"].append({
            "wq": w_in[:, :attn], "wk": w_in[:, attn:2 * attn], "wv": w_in[:, 2 * attn:],
            "bq": b_in[:attn], "bk": b_in[attn:2 * attn], "bv": b_in[2 * attn:],
            "wo": np.asarray(a["out_proj"]["@variables"]["w"], np.float64),
            "bo": np.asarray(a["out_proj"]["@variables"]["b"], np.float64),
            "gamma": np.asarray(ln["w"], np.float64), "beta": np.asarray(ln["b"], np.float64)})
    # the layer norms carry the eps they use (a null descriptor ln_eps means 1e-3 to TF but
    # 1e-5 to the numpy backend)
    eps = {float(layer["attn_layer_norm"]["eps"]) for layer in att.get("attention_layers", [])}
    if len(eps) > 1:
        raise DPKerasError(f"{where}: attention layers with different ln_eps {sorted(eps)} are "
                           "not supported")
    ln_eps = eps.pop() if eps else (1e-3 if d.get("ln_eps") is None else float(d["ln_eps"]))
    if len(weights["attention"]) != int(d["attn_layer"]):
        raise DPKerasError(f"{where}: attn_layer = {d['attn_layer']} but "
                           f"{len(weights['attention'])} attention layers are stored")
    config = {
        "type": "se_atten", "sel": nnei, "rcut": float(d["rcut"]),
        "rcut_smth": float(d["rcut_smth"]), "neuron": list(d["neuron"]),
        "axis_neuron": int(d["axis_neuron"]), "resnet_dt": bool(d["resnet_dt"]),
        "activation_function": d.get("activation_function", "tanh"),
        "type_one_side": bool(d.get("type_one_side", False)), "attn": attn,
        "attn_layer": int(d["attn_layer"]), "attn_dotr": bool(d["attn_dotr"]),
        "attn_mask": bool(d["attn_mask"]), "ln_eps": ln_eps,
        "trainable_ln": bool(d.get("trainable_ln", True)),
        "set_davg_zero": bool(d.get("set_davg_zero", True)),
        "exclude_types": [list(p) for p in d.get("exclude_types", [])],
        "tebd_input_mode": mode, "smooth_type_embedding": False,
        "trainable": bool(d.get("trainable", True)),
    }
    return config, te_config, weights


# --- model -----------------------------------------------------------------------------------
def read_dp(path):
    """Parse a ``.dp`` energy model (descriptor ``se_e2_a``/``se_e2_r``/``se_e3``, ``dpa1`` =
    ``se_atten``, or ``hybrid`` of the first three) into ``(model_config, weights)``."""
    data = load_dict(path)
    m = data.get("model")
    if not isinstance(m, dict):
        raise DPKerasError(f"{path}: no 'model' in the .dp file")
    if m.get("type", "standard") != "standard":
        raise DPKerasError(f"{path}: model type {m.get('type')!r} is not supported (only "
                           "'standard')")
    d, fit = m["descriptor"], m["fitting"]
    kind = d.get("type")
    if kind not in tuple(_SE_KINDS) + ("dpa1", "se_atten", "hybrid"):
        raise DPKerasError(f"{path}: descriptor {kind!r} is not supported by dpkeras "
                           f"yet (supported: {_SUPPORTED})")
    ftype = fit.get("type")
    if ftype not in ("ener", "dipole"):
        raise DPKerasError(f"{path}: fitting {ftype!r} is not supported yet (supported: ener, "
                           "dipole; DeePMD-kit cannot read its own polar .dp files back either)")
    if ftype == "dipole" and kind not in ("se_e2_a", "se_a"):
        raise DPKerasError(f"{path}: a dipole fitting on {kind!r} is not supported (only "
                           "se_e2_a)")
    bad = ["dim_case_embd"] + (["numb_fparam", "numb_aparam"] if ftype != "ener" else [])
    for key in bad:
        if fit.get(key, 0):
            raise DPKerasError(f"{path}: fitting.{key} = {fit[key]} is not supported yet")
    if m.get("pair_exclude_types") or m.get("atom_exclude_types"):
        raise DPKerasError(f"{path}: pair/atom_exclude_types are not supported yet")
    type_map = list(m["type_map"])
    ntypes = len(type_map)
    te_config = None
    tebd_dim = 0
    if kind in ("dpa1", "se_atten"):
        dconfig, te_config, weights = _read_dpa1(d, path, ntypes)
        tebd_dim = te_config["neuron"][-1]
    elif kind == "hybrid":
        subs = d.get("list", [])
        bad = [s.get("type") for s in subs if s.get("type") not in _SE_KINDS]
        if bad or not subs:
            raise DPKerasError(f"{path}: hybrid of {bad or 'nothing'} is not supported (only "
                               "se_e2_a, se_e2_r and se_e3 can be combined)")
        parsed = [_read_se(s, path, ntypes) for s in subs]
        dconfig = {"type": "hybrid", "list": [c for c, _ in parsed]}
        weights = {"hybrid": [w for _, w in parsed]}
    else:
        dconfig, weights = _read_se(d, path, ntypes)
    nets = fit["nets"]["networks"]
    if bool(fit.get("mixed_types", False)) != bool(tebd_dim):
        raise DPKerasError(f"{path}: fitting mixed_types = {fit.get('mixed_types')} with "
                           f"descriptor {kind!r} is not supported (dpkeras, like DeePMD-kit's TF "
                           "backend, uses one shared fitting net exactly for dpa1/se_atten)")
    if tebd_dim:
        if len(nets) != 1 or int(nets[0]["in_dim"]) != int(fit["dim_descrpt"]):
            raise DPKerasError(f"{path}: expected one shared fitting net of input width "
                               f"dim_descrpt = {fit['dim_descrpt']} (descriptor + type "
                               "embedding)")
        fitting = [_read_net(nets[0], path, "fitting")]
    else:
        # dipole: nets only for the selected types (the others are excluded and null)
        excluded = set(fit.get("exclude_types", [])) if ftype == "dipole" else set()
        sel_type = [t for t in range(ntypes) if t not in excluded]
        if any(nets[t] is None for t in sel_type):
            raise DPKerasError(f"{path}: a fitting net of a selected type is missing")
        fitting = [_read_net(nets[t], path, "fitting") for t in sel_type]
    fvars = fit["@variables"]
    mvars = m.get("@variables", {})
    out_bias = np.asarray(mvars.get("out_bias", np.zeros(1)), np.float64)
    out_std = np.asarray(mvars.get("out_std", np.ones(1)), np.float64)
    if not np.allclose(out_std, 1.0):
        raise DPKerasError(f"{path}: model out_std differs from 1, which dpkeras does not "
                           "support")
    trainable_fit = fit.get("trainable", True)
    fconfig = {
        "type": ftype, "neuron": list(fit["neuron"]), "resnet_dt": bool(fit["resnet_dt"]),
        "activation_function": fit.get("activation_function", "tanh"),
    }
    if ftype == "ener":   # the tensor fittings have no trainable key
        fconfig["trainable"] = list(trainable_fit) if isinstance(trainable_fit, list) \
            else bool(trainable_fit)
    if ftype == "dipole":
        if np.any(out_bias) or np.any(np.asarray(fvars.get("bias_atom_e", 0.0))):
            raise DPKerasError(f"{path}: a dipole model with a non-zero output bias is not "
                               "supported (DeePMD-kit's TF backend has none)")
        fconfig["sel_type"] = sel_type
    else:
        bias = np.asarray(fvars["bias_atom_e"], np.float64).reshape(ntypes)
        if out_bias.size > 1:
            bias = bias + out_bias.reshape(-1, ntypes)[0]
        weights["bias_atom_e"] = bias
        for key in ("numb_fparam", "numb_aparam"):
            if fit.get(key, 0):
                fconfig[key] = int(fit[key])
                name = key[5:]                               # fparam / aparam
                for stat in ("avg", "inv_std"):
                    weights[f"{name}_{stat}"] = np.asarray(fvars[f"{name}_{stat}"],
                                                           np.float64).reshape(-1)
    config = {"type_map": type_map, "descriptor": dconfig, "fitting_net": fconfig}
    if te_config is not None:
        config["type_embedding"] = te_config
    # float32 sections stay float32 (their weights are cast on assignment)
    for section, src in ((fconfig, fit), (dconfig, d), (te_config, d.get("type_embedding"))):
        if section is not None and isinstance(src, dict) and src.get("precision") == "float32":
            section["precision"] = "float32"
    for section, src in zip(dconfig.get("list", []), d.get("list", [])):
        if src.get("precision") == "float32":
            section["precision"] = "float32"
    weights["fitting"] = fitting
    return config, weights


# --- writing descriptors ---------------------------------------------------------------------
def _se_dict(d, w, ntypes, tmap):
    """The DeePMD-kit dict of an ``se_e2_a``/``se_e2_r``/``se_e3`` descriptor ``d`` with weights
    ``w`` (``davg``, ``dstd``, ``embeddings``)."""
    three_body = d.descriptor_type == "se_e3"
    nd = 1 if d.type_one_side and not three_body else 2
    networks = [None] * (ntypes ** nd)
    for key, net in w["embeddings"].items():
        idx = key[0] if nd == 1 else key[0] + ntypes * key[1]
        networks[idx] = _embedding_net(net, d.neuron, d.activation_function, d.resnet_dt)
    if nd == 2:  # DeePMD-kit expects full-shape nets for excluded/unused pairs, zeroed
        for idx in range(ntypes ** 2):
            if networks[idx] is None:
                ref = next(iter(w["embeddings"].values()))
                zero = {"w": [np.zeros_like(a) for a in ref["w"]],
                        "b": [np.zeros_like(a) for a in ref["b"]],
                        "idt": [None if a is None else np.zeros_like(a) for a in ref["idt"]]}
                networks[idx] = _embedding_net(zero, d.neuron, d.activation_function,
                                               d.resnet_dt)
    descriptor = {
        "@class": "Descriptor", "@version": 2,
        "type": {"se_e2_a": "se_e2_a", "se_e2_r": "se_r", "se_e3": "se_e3"}[d.descriptor_type],
        "rcut": d.rcut, "rcut_smth": d.rcut_smth, "sel": d.sel, "neuron": d.neuron,
        "resnet_dt": d.resnet_dt, "trainable": d.trainable,
        "type_one_side": d.type_one_side, "exclude_types": [list(p) for p in d.exclude_types],
        "env_protection": 0.0, "set_davg_zero": d.set_davg_zero,
        "activation_function": d.activation_function, "precision": "float64",
        "embeddings": {"@class": "NetworkCollection", "@version": 1, "ndim": nd,
                       "ntypes": ntypes, "network_type": "embedding_network",
                       "networks": networks},
        "env_mat": {"rcut": d.rcut, "rcut_smth": d.rcut_smth, "protection": 0.0,
                    "use_exp_switch": False},
        "@variables": {"davg": w["davg"], "dstd": w["dstd"]},
        "type_map": tmap, "spin": None,
    }
    if d.descriptor_type == "se_e2_a":
        descriptor["axis_neuron"] = d.axis_neuron
    if three_body:   # DeePMD-kit's se_e3 takes neither key
        del descriptor["type_one_side"], descriptor["spin"]
    return descriptor


def _collection(net):
    return {"@class": "NetworkCollection", "@version": 1, "ndim": 0, "ntypes": None,
            "network_type": "embedding_network", "networks": [net]}


def _dpa1_dict(d, w, ntypes, tmap, path):
    """The DeePMD-kit ``dpa1`` dict of an ``se_atten`` descriptor, as DeePMD-kit's TF backend
    serializes it (so that ``dp convert-backend`` rebuilds the same TF graph)."""
    if d.smooth_type_embedding:
        raise DPKerasError(f"{path}: a {d.descriptor_type} model with smooth_type_embedding "
                           "cannot be written as .dp: DeePMD-kit's own TF backend cannot "
                           "serialize it either (its smooth variant differs from the other "
                           "backends); save it as .keras or a SavedModel directory")
    strip = d.tebd_input_mode == "strip"
    if strip and d.type_one_side:
        raise DPKerasError(f"{path}: se_atten with tebd_input_mode 'strip' and type_one_side = "
                           "true cannot be written as .dp (DeePMD-kit's TF backend cannot "
                           "serialize it either); set type_one_side to false or save as .keras")
    te = d.type_embedding_config
    if len(te["neuron"]) != 1:
        raise DPKerasError(f"{path}: a type embedding with {len(te['neuron'])} layers cannot be "
                           "written as .dp (DeePMD-kit's TF backend serializes only one layer); "
                           "save it as .keras or a SavedModel directory")
    tebd = d.tebd_dim
    in_dim = 1 if strip else 1 + tebd * (1 if d.type_one_side else 2)
    emb = _collection(_embedding_net(w["embeddings"][()], d.neuron, d.activation_function,
                                     d.resnet_dt, in_dim))
    emb["ntypes"] = ntypes
    common = {"nnei": d.nnei, "embed_dim": d.neuron[-1], "hidden_dim": d.attn,
              "dotr": d.attn_dotr, "do_mask": d.attn_mask, "scaling_factor": 1.0,
              "normalize": True, "temperature": None, "precision": "float64"}
    layers = []
    for a in w["attention"]:
        in_proj = _layer(np.concatenate([a["wq"], a["wk"], a["wv"]], axis=1),
                         np.concatenate([a["bq"], a["bk"], a["bv"]]), None, "none", False)
        out_proj = _layer(a["wo"], a["bo"], None, "none", False)
        layers.append(dict(common, attention_layer=dict(
            common, in_proj=in_proj, out_proj=out_proj, bias=True, smooth=False, num_heads=1),
            attn_layer_norm={"@class": "LayerNorm", "@version": 1, "eps": d.ln_eps,
                             "trainable": d.trainable_ln, "precision": "float64",
                             "@variables": {"w": a["gamma"], "b": a["beta"]}},
            trainable_ln=d.trainable_ln, ln_eps=d.ln_eps))
    attention = {"@class": "NeighborGatedAttention", "@version": 1, "scaling_factor": 1.0,
                 "normalize": True, "temperature": None, "layer_num": d.attn_layer,
                 "nnei": d.nnei, "embed_dim": d.neuron[-1], "hidden_dim": d.attn,
                 "dotr": d.attn_dotr, "do_mask": d.attn_mask, "trainable_ln": d.trainable_ln,
                 "ln_eps": d.ln_eps, "precision": "float64", "attention_layers": layers}
    te_act = te["activation_function"]
    te_net = _embedding_net(w["type_embedding"], te["neuron"], te_act, te["resnet_dt"], ntypes)
    type_embedding = {"@class": "TypeEmbedNet", "@version": 2, "ntypes": ntypes,
                      "neuron": list(te["neuron"]), "resnet_dt": te["resnet_dt"],
                      "precision": "float64", "activation_function": te_act,
                      "trainable": d.type_embed.trainable, "padding": True,
                      "use_econf_tebd": False, "use_tebd_bias": te["use_tebd_bias"],
                      "type_map": tmap, "embedding": te_net}
    out = {
        "@class": "Descriptor", "type": "dpa1", "@version": 2, "rcut": d.rcut,
        "rcut_smth": d.rcut_smth, "sel": [d.nnei], "ntypes": ntypes, "neuron": d.neuron,
        "axis_neuron": d.axis_neuron, "set_davg_zero": d.set_davg_zero, "attn": d.attn,
        "attn_layer": d.attn_layer, "attn_dotr": d.attn_dotr, "attn_mask": d.attn_mask,
        "activation_function": d.activation_function, "resnet_dt": d.resnet_dt,
        "smooth_type_embedding": False, "tebd_input_mode": d.tebd_input_mode,
        "trainable_ln": d.trainable_ln, "ln_eps": d.ln_eps, "precision": "float64",
        "embeddings": emb, "attention_layers": attention,
        "env_mat": {"rcut": d.rcut, "rcut_smth": d.rcut_smth, "protection": 0.0,
                    "use_exp_switch": False},
        "exclude_types": [list(p) for p in d.exclude_types], "env_protection": 0.0,
        "@variables": {"davg": w["davg"], "dstd": w["dstd"]}, "type_map": tmap,
        "trainable": d.trainable, "type_one_side": d.type_one_side, "spin": None,
        "type_embedding": type_embedding, "use_tebd_bias": te["use_tebd_bias"],
        "tebd_dim": tebd,
    }
    if strip:
        out["embeddings_strip"] = _collection(_embedding_net(
            w["embedding_strip"], d.neuron, d.activation_function, d.resnet_dt, 2 * tebd))
        out["embeddings_strip"]["ntypes"] = ntypes
    out.update(scaling_factor=1.0, normalize=True, temperature=None, concat_output_tebd=True,
               use_econf_tebd=False)
    return out


def write_dp(model, path, model_def_script=None):
    """Write an ``EnergyModel`` as a DeePMD-kit ``.dp`` file."""
    from dpkeras.model.weights import get_weights

    d, f = model.descriptor, model.fitting
    kind = d.descriptor_type
    if kind not in ("se_e2_a", "se_e2_r", "se_e3", "se_atten", "se_atten_v2", "hybrid"):
        raise DPKerasError(f"{path}: writing a {kind} model as .dp is not supported yet; save "
                           "it as .keras or a SavedModel directory")
    ftype = getattr(f, "fitting_type", "ener")
    if ftype not in ("ener", "dipole"):
        raise DPKerasError(f"{path}: writing a {ftype} model as .dp is not supported (DeePMD-kit "
                           "cannot read its own polar .dp files back); save it as .keras or a "
                           "SavedModel directory")
    if kind in ("se_e2_a", "hybrid") and getattr(d, "type_embed", None) is not None:
        raise DPKerasError(f"{path}: writing a type-embedded {kind} model (model.type_embedding "
                           "with se_e2_a, or a hybrid with an attention member) as .dp is not "
                           "supported: DeePMD-kit's TF backend cannot serialize it either; save "
                           "it as .keras or a SavedModel directory")
    leaves = d.leaves() if hasattr(d, "leaves") else [d]
    if any(getattr(x, "tabulated", None) for x in leaves):
        raise DPKerasError(f"{path}: a compressed model (tabulated embedding nets, `dp "
                           "compress`) cannot be written as .dp: DeePMD-kit's .dp holds the "
                           "networks, not tables; save it as .keras or a SavedModel directory, "
                           "or convert the graph from before compression")
    if any(getattr(x, "net_dtype", "float64") != "float64" for x in leaves + [f]) or (
            getattr(d, "type_embed", None) is not None and d.type_embed.variable_dtype != "float64"):
        raise DPKerasError(f"{path}: writing a float32 model as .dp is not supported yet; save "
                           "it as .keras or a SavedModel directory")
    w = get_weights(model)
    ntypes = model.get_ntypes()
    tmap = model.get_type_map()
    if kind in ("se_atten", "se_atten_v2"):
        descriptor = _dpa1_dict(d, w, ntypes, tmap, path)
    elif kind == "hybrid":
        descriptor = {"@class": "Descriptor", "type": "hybrid", "@version": 1,
                      # as DeePMD-kit's TF backend: the members carry no type_map
                      "list": [_se_dict(sub, ws, ntypes, None)
                               for sub, ws in zip(d.descriptors, w["hybrid"])]}
    else:
        descriptor = _se_dict(d, w, ntypes, tmap)
    fitting = _dipole_dict(f, w, ntypes, tmap) if ftype == "dipole" else \
        _ener_dict(f, w, ntypes, tmap)
    nout = 3 if ftype == "dipole" else 1
    model_dict = {
        "@class": "Model", "type": "standard", "@version": 2, "type_map": tmap,
        "descriptor": descriptor, "fitting": fitting, "atom_exclude_types": [],
        "pair_exclude_types": [], "rcond": None, "preset_out_bias": None,
        "@variables": {"out_bias": np.zeros((1, ntypes, nout)),
                       "out_std": np.ones((1, ntypes, nout))},
    }
    if model_def_script is None:
        model_def_script = model.get_config_deepmd()
    save_dict(path, {"software": "dpkeras", "version": __version__,
                     "time": str(datetime.datetime.now(datetime.timezone.utc)),
                     "backend": "dpkeras", "model": model_dict,
                     "model_def_script": model_def_script})


def _fit_trainable(f):
    return [bool(f.trainable)] * (len(f.neuron) + 1)


def _ener_dict(f, w, ntypes, tmap):
    mixed = bool(f.tebd_dim)
    nfp, nap = int(getattr(f, "numb_fparam", 0)), int(getattr(f, "numb_aparam", 0))
    # DeePMD-kit's TF convention: dim_descrpt includes the type embedding, not fparam/aparam
    dim = f.dim_descrpt + f.tebd_dim
    nets = [_fitting_net(net, dim + nfp + nap, f.neuron, f.activation_function, f.resnet_dt)
            for net in w["fitting"]]
    stats = {f"{n}_{s}": (w[f"{n}_{s}"] if k else None)
             for n, k in (("fparam", nfp), ("aparam", nap)) for s in ("avg", "inv_std")}
    return {
        "@class": "Fitting", "type": "ener", "@version": 4, "var_name": "energy",
        "ntypes": ntypes, "dim_descrpt": dim, "mixed_types": mixed, "dim_out": 1,
        "neuron": f.neuron, "resnet_dt": f.resnet_dt, "numb_fparam": nfp, "numb_aparam": nap,
        "dim_case_embd": 0, "default_fparam": None, "rcond": None, "tot_ener_zero": False,
        "trainable": _fit_trainable(f), "atom_ener": [],
        "activation_function": f.activation_function, "precision": "float64",
        "layer_name": None, "use_aparam_as_mask": False, "spin": None, "exclude_types": [],
        "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 0 if mixed else 1,
                 "ntypes": ntypes, "network_type": "fitting_network", "networks": nets},
        "@variables": dict({"bias_atom_e": w["bias_atom_e"].reshape(ntypes, 1)}, **stats,
                           case_embd=None),
        "type_map": tmap,
    }


def _dipole_dict(f, w, ntypes, tmap):
    """DeePMD-kit's TF ``dipole`` fitting: nets of the selected types, ``null`` elsewhere."""
    m1 = f.embedding_width
    nets = [None] * ntypes
    for t, net in zip(f.sel_type, w["fitting"]):
        nets[t] = _fitting_net(net, f.dim_descrpt, f.neuron, f.activation_function,
                               f.resnet_dt, out_dim=m1)
    return {
        "@class": "Fitting", "type": "dipole", "@version": 4, "ntypes": ntypes,
        "dim_descrpt": f.dim_descrpt, "embedding_width": m1, "mixed_types": False,
        "neuron": f.neuron, "resnet_dt": f.resnet_dt, "numb_fparam": 0, "numb_aparam": 0,
        "dim_case_embd": 0, "default_fparam": None,
        "activation_function": f.activation_function, "precision": "float64",
        "exclude_types": [t for t in range(ntypes) if t not in f.sel_type],
        "@variables": {"fparam_avg": None, "fparam_inv_std": None, "aparam_avg": None,
                       "aparam_inv_std": None, "case_embd": None,
                       "bias_atom_e": np.zeros((ntypes, m1))},
        "type_map": tmap, "var_name": "dipole", "rcond": None, "tot_ener_zero": False,
        "trainable": _fit_trainable(f), "layer_name": None, "use_aparam_as_mask": False,
        "spin": None, "r_differentiable": True, "c_differentiable": True,
        "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 1, "ntypes": ntypes,
                 "network_type": "fitting_network", "networks": nets},
    }
