"""DeePMD-kit's backend-neutral ``.dp`` model file (read and write).

A ``.dp`` file is HDF5: the root attribute ``json`` holds DeePMD-kit's versioned ``serialize()``
dict, and every array under an ``@variables`` key is replaced by the path of a root dataset. The
layout of the ``se_e2_a`` + ``ener`` dicts is described in ``docs/deepmd_serialize.md``. Files
written here convert with ``dp convert-backend model.dp model.pb`` and evaluate identically in
DeePMD-kit.
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
    return {"@class": "Layer", "@version": 2, "bias": b is not None, "use_timestep": idt is not None,
            "activation_function": activation, "resnet": resnet, "precision": "float64",
            "trainable": True, "@variables": {"w": w, "b": b, "idt": idt}}


def _embedding_net(weights, neuron, activation, resnet_dt):
    layers = [_layer(w, b, idt, activation, True) for w, b, idt in
              zip(weights["w"], weights["b"], weights["idt"])]
    return {"@class": "EmbeddingNetwork", "@version": 2, "in_dim": 1, "neuron": list(neuron),
            "activation_function": activation, "resnet_dt": resnet_dt, "bias": True,
            "precision": "float64", "layers": layers}


def _fitting_net(weights, in_dim, neuron, activation, resnet_dt):
    layers = []
    prev = in_dim
    for k, (w, b, idt) in enumerate(zip(weights["w"], weights["b"], weights["idt"])):
        # DeePMD-kit's numpy backend adds a residual wherever resnet is true and the width is
        # kept or doubled; TF (and dpkeras) only for kept widths after the first layer
        layers.append(_layer(w, b, idt, activation, k > 0 and prev == w.shape[1]))
        prev = w.shape[1]
    layers.append(_layer(weights["w_out"], weights["b_out"], None, "none", False))
    return {"@class": "FittingNetwork", "@version": 1, "in_dim": in_dim, "out_dim": 1,
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
        out["b"].append(np.asarray(v["b"], np.float64))
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


# --- model -----------------------------------------------------------------------------------
def read_dp(path):
    """Parse an ``se_e2_a``/``se_e2_r`` + ``ener`` ``.dp`` file into ``(model_config, weights)``."""
    data = load_dict(path)
    m = data.get("model")
    if not isinstance(m, dict):
        raise DPKerasError(f"{path}: no 'model' in the .dp file")
    if m.get("type", "standard") != "standard":
        raise DPKerasError(f"{path}: model type {m.get('type')!r} is not supported (only "
                           "'standard')")
    d, fit = m["descriptor"], m["fitting"]
    if d.get("type") not in ("se_e2_a", "se_a", "se_e2_r", "se_r", "se_e3"):
        raise DPKerasError(f"{path}: descriptor {d.get('type')!r} is not supported by dpkeras "
                           "yet (supported: se_e2_a, se_e2_r, se_e3)")
    radial = d["type"] in ("se_e2_r", "se_r")
    three_body = d["type"] == "se_e3"
    ncol = 1 if radial else 4
    if fit.get("type") != "ener":
        raise DPKerasError(f"{path}: fitting {fit.get('type')!r} is not supported yet "
                           "(supported: ener)")
    for key in ("numb_fparam", "numb_aparam", "dim_case_embd"):
        if fit.get(key, 0):
            raise DPKerasError(f"{path}: fitting.{key} = {fit[key]} is not supported yet")
    if m.get("pair_exclude_types") or m.get("atom_exclude_types"):
        raise DPKerasError(f"{path}: pair/atom_exclude_types are not supported yet")
    if d.get("env_protection", 0.0):
        raise DPKerasError(f"{path}: descriptor.env_protection is not supported yet")
    type_map = list(m["type_map"])
    ntypes = len(type_map)
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
    nets = fit["nets"]["networks"]
    fitting = [_read_net(nets[t], path, "fitting") for t in range(ntypes)]
    out_bias = np.asarray(m.get("@variables", {}).get("out_bias", np.zeros((1, ntypes, 1))))
    out_std = np.asarray(m.get("@variables", {}).get("out_std", np.ones((1, ntypes, 1))))
    if not np.allclose(out_std, 1.0):
        raise DPKerasError(f"{path}: model out_std differs from 1, which dpkeras does not "
                           "support for energy models")
    bias = np.asarray(fit["@variables"]["bias_atom_e"], np.float64).reshape(ntypes) + \
        out_bias.reshape(-1, ntypes)[0]
    trainable_fit = fit.get("trainable", True)
    config = {
        "type_map": type_map,
        "descriptor": {
            "type": "se_e2_r" if radial else ("se_e3" if three_body else "se_e2_a"),
            "sel": sel, "rcut": float(d["rcut"]),
            "rcut_smth": float(d["rcut_smth"]), "neuron": list(d["neuron"]),
            "resnet_dt": bool(d["resnet_dt"]),
            "exclude_types": [list(p) for p in d.get("exclude_types", [])],
            "set_davg_zero": bool(d.get("set_davg_zero", False)),
            "activation_function": d.get("activation_function", "tanh"),
            "trainable": bool(d.get("trainable", True)),
        },
        "fitting_net": {
            "type": "ener", "neuron": list(fit["neuron"]), "resnet_dt": bool(fit["resnet_dt"]),
            "activation_function": fit.get("activation_function", "tanh"),
            "trainable": all(trainable_fit) if isinstance(trainable_fit, list)
            else bool(trainable_fit),
        },
    }
    if not three_body:
        config["descriptor"]["type_one_side"] = bool(d["type_one_side"])
    if not radial and not three_body:
        config["descriptor"]["axis_neuron"] = int(d["axis_neuron"])
    weights = {
        "davg": np.asarray(d["@variables"]["davg"], np.float64).reshape(ntypes, nnei, ncol),
        "dstd": np.asarray(d["@variables"]["dstd"], np.float64).reshape(ntypes, nnei, ncol),
        "embeddings": embeddings, "fitting": fitting, "bias_atom_e": bias,
    }
    return config, weights


def write_dp(model, path, model_def_script=None):
    """Write an ``EnergyModel`` as a DeePMD-kit ``.dp`` file."""
    from dpkeras.model.weights import get_weights

    if model.descriptor.descriptor_type not in ("se_e2_a", "se_e2_r", "se_e3"):
        raise DPKerasError(f"{path}: writing a {model.descriptor.descriptor_type} model as .dp is "
                           "not supported yet; save it as .keras or a SavedModel directory")
    w = get_weights(model)
    d, f = model.descriptor, model.fitting
    ntypes = model.get_ntypes()
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
    tmap = model.get_type_map()
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
    fitting = {
        "@class": "Fitting", "type": "ener", "@version": 4, "var_name": "energy",
        "ntypes": ntypes, "dim_descrpt": f.dim_descrpt, "mixed_types": False, "dim_out": 1,
        "neuron": f.neuron, "resnet_dt": f.resnet_dt, "numb_fparam": 0, "numb_aparam": 0,
        "dim_case_embd": 0, "default_fparam": None, "rcond": None, "tot_ener_zero": False,
        "trainable": [bool(f.trainable)] * (len(f.neuron) + 1), "atom_ener": [],
        "activation_function": f.activation_function, "precision": "float64",
        "layer_name": None, "use_aparam_as_mask": False, "spin": None, "exclude_types": [],
        "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 1, "ntypes": ntypes,
                 "network_type": "fitting_network",
                 "networks": [_fitting_net(net, f.dim_descrpt, f.neuron, f.activation_function,
                                           f.resnet_dt) for net in w["fitting"]]},
        "@variables": {"bias_atom_e": w["bias_atom_e"].reshape(ntypes, 1), "fparam_avg": None,
                       "fparam_inv_std": None, "aparam_avg": None, "aparam_inv_std": None,
                       "case_embd": None},
        "type_map": tmap,
    }
    model_dict = {
        "@class": "Model", "type": "standard", "@version": 2, "type_map": tmap,
        "descriptor": descriptor, "fitting": fitting, "atom_exclude_types": [],
        "pair_exclude_types": [], "rcond": None, "preset_out_bias": None,
        "@variables": {"out_bias": np.zeros((1, ntypes, 1)), "out_std": np.ones((1, ntypes, 1))},
    }
    if model_def_script is None:
        model_def_script = model.get_config_deepmd()
    save_dict(path, {"software": "dpkeras", "version": __version__,
                     "time": str(datetime.datetime.now(datetime.timezone.utc)),
                     "backend": "dpkeras", "model": model_dict,
                     "model_def_script": model_def_script})
