"""``dpa1`` descriptor dicts (TF ``se_atten``, concat or strip mode): read and write."""

import numpy as np

from dpkeras.errors import DPKerasError
from dpkeras.io.dp.nets import activation, collection, embedding_net, layer, read_net


def read_dpa1(d, path, ntypes):
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
                 "activation_function": activation(te.get("activation_function")),
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
        "embeddings": {(): read_net(nets[0], path, "embedding")},
        "type_embedding": read_net(te_net, path, "embedding"),
        "attention": [],
    }
    if mode == "strip":
        strip = d["embeddings_strip"]["networks"]
        if len(strip) != 1 or int(strip[0]["in_dim"]) != 2 * tebd_dim:
            raise DPKerasError(f"{where}: expected one strip-mode type-pair net of input width "
                               f"{2 * tebd_dim} (neighbor and center type embeddings)")
        weights["embedding_strip"] = read_net(strip[0], path, "embedding")
    att = d["attention_layers"]
    attn = int(d["attn"])
    for k, item in enumerate(att.get("attention_layers", [])):
        a = item["attention_layer"]
        if not a.get("bias", True) or a.get("num_heads", 1) != 1 or a.get("smooth"):
            raise DPKerasError(f"{where}: attention layer {k} has no bias, several heads or the "
                               "smooth variant, which dpkeras does not support")
        w_in = np.asarray(a["in_proj"]["@variables"]["w"], np.float64)
        b_in = np.asarray(a["in_proj"]["@variables"]["b"], np.float64)
        ln = item["attn_layer_norm"]["@variables"]
        weights["attention"].append({
            "wq": w_in[:, :attn], "wk": w_in[:, attn:2 * attn], "wv": w_in[:, 2 * attn:],
            "bq": b_in[:attn], "bk": b_in[attn:2 * attn], "bv": b_in[2 * attn:],
            "wo": np.asarray(a["out_proj"]["@variables"]["w"], np.float64),
            "bo": np.asarray(a["out_proj"]["@variables"]["b"], np.float64),
            "gamma": np.asarray(ln["w"], np.float64), "beta": np.asarray(ln["b"], np.float64)})
    # the layer norms carry the eps they use (a null descriptor ln_eps means 1e-3 to TF but
    # 1e-5 to the numpy backend)
    eps = {float(item["attn_layer_norm"]["eps"]) for item in att.get("attention_layers", [])}
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


def dpa1_dict(d, w, ntypes, tmap, path):
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
    emb = collection(embedding_net(w["embeddings"][()], d.neuron, d.activation_function,
                                     d.resnet_dt, in_dim))
    emb["ntypes"] = ntypes
    common = {"nnei": d.nnei, "embed_dim": d.neuron[-1], "hidden_dim": d.attn,
              "dotr": d.attn_dotr, "do_mask": d.attn_mask, "scaling_factor": 1.0,
              "normalize": True, "temperature": None, "precision": "float64"}
    layers = []
    for a in w["attention"]:
        in_proj = layer(np.concatenate([a["wq"], a["wk"], a["wv"]], axis=1),
                         np.concatenate([a["bq"], a["bk"], a["bv"]]), None, "none", False)
        out_proj = layer(a["wo"], a["bo"], None, "none", False)
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
    te_net = embedding_net(w["type_embedding"], te["neuron"], te_act, te["resnet_dt"], ntypes)
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
        out["embeddings_strip"] = collection(embedding_net(
            w["embedding_strip"], d.neuron, d.activation_function, d.resnet_dt, 2 * tebd))
        out["embeddings_strip"]["ntypes"] = ntypes
    out.update(scaling_factor=1.0, normalize=True, temperature=None, concat_output_tebd=True,
               use_econf_tebd=False)
    return out
