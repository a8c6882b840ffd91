"""Read DeePMD-kit TensorFlow frozen graphs (``.pb``) without running them.

The GraphDef is parsed with plain TensorFlow; only ``Const`` nodes are read (weights, statistics
and the string attributes ``train_attr/training_script``, ``model_attr/tmap`` ...). DeePMD-kit's
custom ops are never imported or executed.
"""

import json
import os

import numpy as np
import tensorflow as tf

from dpkeras.errors import DPKerasError


class FrozenGraph:
    """Constants of a DeePMD-kit frozen graph.

    ``consts``: node name -> numpy array (numeric constants); ``attrs``: node name -> str/bytes
    (string constants); ``ops``: the set of op types in the graph.
    """

    def __init__(self, path):
        self.path = path
        if not os.path.isfile(path):
            raise DPKerasError(f"{path}: no such file (expected a DeePMD-kit frozen graph .pb)")
        graph_def = tf.compat.v1.GraphDef()
        try:
            with open(path, "rb") as f:
                graph_def.ParseFromString(f.read())
        except Exception as exc:  # protobuf raises DecodeError and friends
            raise DPKerasError(f"{path}: not a readable TensorFlow GraphDef ({exc}); the file "
                               "is corrupt or truncated, or not a frozen model") from None
        self.consts, self.attrs, self.ops = {}, {}, set()
        for node in graph_def.node:
            self.ops.add(node.op)
            if node.op != "Const":
                continue
            tensor = node.attr["value"].tensor
            if tensor.dtype == tf.string.as_datatype_enum:
                vals = tensor.string_val
                self.attrs[node.name] = vals[0].decode() if len(vals) == 1 else [
                    v.decode() for v in vals]
            else:
                self.consts[node.name] = tf.make_ndarray(tensor)
        if not self.consts:
            raise DPKerasError(f"{path}: the graph holds no constants; not a frozen model")

    def const(self, name):
        if name not in self.consts:
            raise DPKerasError(
                f"{self.path}: the frozen graph has no constant {name!r}; this graph was not made "
                "by a DeePMD-kit version/model kind that dpkeras can read")
        return self.consts[name]

    def scalar_attr(self, name, default=None):
        if name in self.attrs:
            return self.attrs[name]
        if name in self.consts:
            return self.consts[name].item()
        return default

    def training_script(self):
        script = self.attrs.get("train_attr/training_script")
        if script is None:
            raise DPKerasError(
                f"{self.path}: no train_attr/training_script in the graph; it was frozen by a "
                "DeePMD-kit too old to record its input (re-freeze it with DeePMD-kit >= 2.0)")
        return json.loads(script)


def _embedding_weights(g, prefix, suffix, nlayer, resnet_dt):
    w = [g.const(f"{prefix}/matrix_{k + 1}{suffix}") for k in range(nlayer)]
    b = [g.const(f"{prefix}/bias_{k + 1}{suffix}") for k in range(nlayer)]
    # TF creates a timestep only on residual layers, stored as [1, out]
    idt = []
    for k in range(nlayer):
        name = f"{prefix}/idt_{k + 1}{suffix}"
        idt.append(g.consts[name].reshape(-1) if resnet_dt and name in g.consts else None)
    return {"w": w, "b": b, "idt": idt}


def _fitting_weights(g, suffix, neuron, resnet_dt):
    """Weights of the fitting net ``layer_{k}{suffix}/...``, ``final_layer{suffix}/...``
    (``suffix`` ``_type_{t}`` for per-type nets, ``""`` for se_atten's shared net)."""
    w, b, idt = [], [], []
    for k in range(len(neuron)):
        w.append(g.const(f"layer_{k}{suffix}/matrix"))
        b.append(g.const(f"layer_{k}{suffix}/bias"))
        # DeePMD-kit only creates a timestep where the layer is residual (same width);
        # elsewhere the timestep is the identity
        name = f"layer_{k}{suffix}/idt"
        idt.append(g.consts[name].reshape(-1) if resnet_dt and name in g.consts else None)
    w_out = g.const(f"final_layer{suffix}/matrix")
    b_out = g.consts.get(f"final_layer{suffix}/bias", np.zeros(w_out.shape[1]))
    return {"w": w, "b": b, "idt": idt, "w_out": w_out, "b_out": b_out}


def read_model(path):
    """Parse any frozen graph dpkeras reads: energy models (:func:`read_energy_model`) and
    ``dipole``/``polar`` models (:func:`read_tensor_model`). Returns ``(model_config, weights)``."""
    g = FrozenGraph(path)
    ftype = g.training_script().get("model", {}).get("fitting_net", {}).get("type", "ener")
    if ftype in ("dipole", "polar"):
        return read_tensor_model(path, g)
    return read_energy_model(path)


def read_tensor_model(path, g=None):
    """Parse an ``se_e2_a`` + ``dipole``/``polar`` frozen graph (DeePMD-kit's ``DipoleModel``/
    ``PolarModel``): per-type fitting nets ``layer_k_type_t``/``final_layer_type_t`` for the
    types of ``model_attr/sel_type`` and, for ``polar``, ``fitting_attr/t_constant_matrix``."""
    g = g or FrozenGraph(path)
    model = g.training_script().get("model", {})
    dcfg, fcfg = model.get("descriptor", {}), model.get("fitting_net", {})
    ftype = fcfg.get("type")
    if dcfg.get("type") not in ("se_e2_a", "se_a"):
        raise DPKerasError(f"{path}: a {ftype} model on the {dcfg.get('type')!r} descriptor is "
                           "not supported yet (supported: se_e2_a)")
    tmap = _type_map(g, path, model)
    ntypes = len(tmap)
    sel_type = g.consts.get("model_attr/sel_type")
    sel_type = sorted(int(t) for t in (np.ravel(sel_type) if sel_type is not None else
                                       (fcfg.get("sel_type") or range(ntypes))))
    desc = _read_se_descriptor(g, dcfg, ntypes, "")
    fneuron = fcfg.get("neuron", [120, 120, 120])
    fresnet = fcfg.get("resnet_dt", True)
    weights = dict(desc, fitting=[_fitting_weights(g, f"_type_{t}", fneuron, fresnet)
                                  for t in sel_type])
    if ftype == "polar":
        weights["constant_matrix"] = np.asarray(
            g.consts.get("fitting_attr/t_constant_matrix", np.zeros(ntypes)),
            np.float64).reshape(ntypes)
    fcfg = dict(fcfg, sel_type=sel_type)
    return dict(model, type_map=tmap, fitting_net=fcfg), weights


def read_energy_model(path):
    """Parse an ``se_e2_a``/``se_e2_r``/``se_e3``/``hybrid``/``se_atten``/``se_atten_v2`` +
    ``ener`` frozen graph.

    Returns ``(model_config, weights)`` where ``model_config`` is the model section of the stored
    training script (DeePMD-kit keys) and ``weights`` a plain dict understood by
    :func:`dpkeras.model.weights.set_weights`.
    """
    g = FrozenGraph(path)
    script = g.training_script()
    model = script.get("model", {})
    if "fitting_net_dict" in model or "model_dict" in model:
        raise DPKerasError(f"{path}: multi-task frozen graphs are not supported yet")
    dcfg, fcfg = model.get("descriptor", {}), model.get("fitting_net", {})
    dtype, ftype = dcfg.get("type"), fcfg.get("type", "ener")
    if dtype not in _SE_TYPES + _ATTENTION_TYPES + ("hybrid",):
        raise DPKerasError(f"{path}: descriptor type {dtype!r} in this frozen graph is not "
                           "supported by dpkeras yet (supported: se_e2_a, se_e2_r, se_e3, "
                           "se_atten, se_atten_v2, hybrid)")
    if ftype != "ener":
        raise DPKerasError(f"{path}: fitting_net type {ftype!r} is not supported yet "
                           "(supported: ener)")
    tmap = _type_map(g, path, model)
    ntypes = len(tmap)
    # a type embedding: attention descriptors, se_e2_a with model.type_embedding (se_e2_a_tebd)
    # and hybrids with an attention member; the fitting is then one net for all types
    te = _type_embedding_weights(g, model) if "type_embed_net/matrix_1" in g.consts else None
    if dtype == "hybrid":
        subs = dcfg.get("list", [])
        bad = [d.get("type") for d in subs if d.get("type") not in _SE_TYPES + _ATTENTION_TYPES]
        if bad:
            raise DPKerasError(f"{path}: hybrid with {bad} is not supported yet (only se_e2_a, "
                               "se_e2_r, se_e3, se_atten and se_atten_v2 can be combined)")
        desc = {"hybrid": [_read_descriptor(g, d, ntypes, f"_{k}", te)
                           for k, d in enumerate(subs)]}
    else:
        desc = _read_descriptor(g, dcfg, ntypes, "", te)
    fneuron = fcfg.get("neuron", [120, 120, 120])
    fresnet = fcfg.get("resnet_dt", True)
    suffixes = [""] if te is not None else [f"_type_{t}" for t in range(ntypes)]
    fitting = [_fitting_weights(g, sfx, fneuron, fresnet) for sfx in suffixes]
    bias = _bias_atom_e(g, ntypes)
    model = dict(model, type_map=tmap)
    weights = dict(desc, fitting=fitting, bias_atom_e=bias)
    weights.update(_param_stats(g))
    return model, weights


def _param_stats(g):
    """fparam/aparam normalization (``fitting_attr/t_{f,a}param_{avg,istd}``), when present."""
    out = {}
    for p in ("fparam", "aparam"):
        if f"fitting_attr/t_{p}_avg" in g.consts:
            out[f"{p}_avg"] = g.consts[f"fitting_attr/t_{p}_avg"].reshape(-1)
            out[f"{p}_inv_std"] = g.const(f"fitting_attr/t_{p}_istd").reshape(-1)
    return out


_SE_TYPES = ("se_e2_a", "se_a", "se_e2_r", "se_r", "se_e3", "se_t", "se_a_3be")


_ATTENTION_TYPES = ("se_atten", "dpa1", "se_atten_v2")


def _read_descriptor(g, dcfg, ntypes, sfx, te):
    """One descriptor's weights (``sfx``: ``_k`` for the k-th member of a hybrid, whose constants
    are ``descrpt_attr_k/...``, ``filter_type_i_k/...``, ``attention_layer_i_k/...``); ``te``: the
    model's type embedding weights, or ``None``."""
    if dcfg.get("type") in _ATTENTION_TYPES:
        out = _read_attention_descriptor(g, dcfg, ntypes, sfx)
    else:
        out = _read_se_descriptor(g, dcfg, ntypes, sfx, te is not None)
    if te is not None:
        out["type_embedding"] = te
    return out


def _read_se_descriptor(g, dcfg, ntypes, sfx, tebd=False):
    """Statistics and embedding nets of a per-type descriptor; with a type embedding (``tebd``,
    se_e2_a only) its one net ``filter_type_all{sfx}/matrix_k``."""
    dtype = dcfg.get("type")
    ncol = 1 if dtype in ("se_e2_r", "se_r") else 4
    # se_e2_r graphs do not store descrpt_attr/sel; the training script always has it
    sel = [int(s) for s in g.consts.get(f"descrpt_attr{sfx}/sel", dcfg.get("sel"))]
    nnei = sum(sel)
    davg = g.const(f"descrpt_attr{sfx}/t_avg").reshape(ntypes, nnei, ncol)
    dstd = g.const(f"descrpt_attr{sfx}/t_std").reshape(ntypes, nnei, ncol)
    neuron = dcfg.get("neuron", [10, 20, 40])
    resnet_dt = dcfg.get("resnet_dt", False)
    embeddings = {}
    if tebd:
        if dtype not in ("se_e2_a", "se_a"):
            raise DPKerasError(f"{g.path}: a type-embedded {dtype} descriptor is not supported "
                               "(only se_e2_a takes the type embedding)")
        embeddings[()] = _embedding_weights(g, f"filter_type_all{sfx}", "", len(neuron),
                                            resnet_dt)
    elif dtype in ("se_e3", "se_t", "se_a_3be"):   # nets per neighbor-type pair a <= b
        for a in range(ntypes):
            for b in range(a, ntypes):
                embeddings[(a, b)] = _embedding_weights(g, f"filter_type_all{sfx}", f"_{a}_{b}",
                                                        len(neuron), resnet_dt)
    elif dcfg.get("type_one_side", False):
        for tj in range(ntypes):
            embeddings[(tj,)] = _embedding_weights(g, f"filter_type_all{sfx}", f"_{tj}",
                                                   len(neuron), resnet_dt)
    else:
        excl = {tuple(sorted(p)) for p in dcfg.get("exclude_types", [])}
        for ti in range(ntypes):
            for tj in range(ntypes):
                if tuple(sorted((ti, tj))) in excl:
                    continue
                embeddings[(ti, tj)] = _embedding_weights(g, f"filter_type_{ti}{sfx}", f"_{tj}",
                                                          len(neuron), resnet_dt)
    return {"davg": davg, "dstd": dstd, "embeddings": embeddings}


def _type_map(g, path, model):
    tmap = g.scalar_attr("model_attr/tmap", "").split()
    if model.get("type_map") and list(model["type_map"]) != tmap:
        raise DPKerasError(f"{path}: type map in model_attr/tmap {tmap} differs from the "
                           f"training script's {model['type_map']}")
    return tmap


def _bias_atom_e(g, ntypes):
    bias = g.const("fitting_attr/t_bias_atom_e").reshape(ntypes)
    out_bias = g.consts.get("model_attr/model_attr/t_out_bias")
    if out_bias is not None:
        bias = bias + out_bias.reshape(-1, ntypes)[0]
    return bias


def _type_embedding_weights(g, model):
    """The model's type embedding net ``type_embed_net/matrix_k`` (``bias_k``, ``idt_k``)."""
    te_neuron = (model.get("type_embedding") or {}).get("neuron", [8])
    te = {"w": [], "b": [], "idt": []}
    for k in range(len(te_neuron)):
        te["w"].append(g.const(f"type_embed_net/matrix_{k + 1}"))
        te["b"].append(g.consts.get(f"type_embed_net/bias_{k + 1}"))
        idt = g.consts.get(f"type_embed_net/idt_{k + 1}")
        te["idt"].append(None if idt is None else idt.reshape(-1))
    return te


def _read_attention_descriptor(g, dcfg, ntypes, sfx):
    """``se_atten``/``se_atten_v2`` (TF): statistics, the one embedding net (and in strip mode
    the type-pair net ``..._two_side_ebd``) and the attention layers."""
    nnei = int(np.sum(g.consts.get(f"descrpt_attr{sfx}/sel", dcfg.get("sel"))))
    davg = g.const(f"descrpt_attr{sfx}/t_avg").reshape(ntypes, nnei, 4)
    dstd = g.const(f"descrpt_attr{sfx}/t_std").reshape(ntypes, nnei, 4)
    neuron = dcfg.get("neuron", [10, 20, 40])
    resnet_dt = dcfg.get("resnet_dt", False)
    embedding = _embedding_weights(g, f"filter_type_all{sfx}", "", len(neuron), resnet_dt)
    strip = dcfg.get("stripped_type_embedding")
    if strip is None:
        strip = dcfg.get("type") == "se_atten_v2" or dcfg.get("tebd_input_mode") == "strip"
    attention = []
    for i in range(int(dcfg.get("attn_layer", 2))):
        p = f"attention_layer_{i}{sfx}"
        attention.append({
            "wq": g.const(f"{p}/c_query/matrix"), "bq": g.const(f"{p}/c_query/bias"),
            "wk": g.const(f"{p}/c_key/matrix"), "bk": g.const(f"{p}/c_key/bias"),
            "wv": g.const(f"{p}/c_value/matrix"), "bv": g.const(f"{p}/c_value/bias"),
            "wo": g.const(f"{p}/c_out/matrix"), "bo": g.const(f"{p}/c_out/bias"),
            "gamma": g.const(f"{p}/layer_normalization/gamma"),
            "beta": g.const(f"{p}/layer_normalization/beta")})
    out = {"davg": davg, "dstd": dstd, "embeddings": {(): embedding}, "attention": attention}
    if strip:   # the type-pair net (DeePMD-kit's "two side" embedding)
        out["embedding_strip"] = _embedding_weights(g, f"filter_type_all{sfx}", "_two_side_ebd",
                                                    len(neuron), resnet_dt)
    return out
