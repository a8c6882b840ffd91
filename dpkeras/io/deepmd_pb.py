"""Read DeePMD-kit TensorFlow frozen graphs (``.pb``) without running them.

The GraphDef is parsed with plain TensorFlow; only ``Const`` nodes are read (weights, statistics
and the string attributes ``train_attr/training_script``, ``model_attr/tmap`` ...). DeePMD-kit's
custom ops are never imported or executed.
"""

import json
import os

import numpy as np
import tensorflow as tf

from dpkeras.config.single import mixed_precision_model
from dpkeras.errors import DPKerasError
from dpkeras.io.graph_arch import (GraphIndex, compressed_attention, compressed_tables,
                                   fitting_layers, infer_model)
from dpkeras.io.graph_script import merge_with_script


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
        self.index = GraphIndex(graph_def.node, path)

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
        """The stored input (``train_attr/training_script``, DeePMD-kit >= 2.0), or ``None``."""
        script = self.attrs.get("train_attr/training_script")
        if script is None:
            return None
        try:
            return json.loads(script)
        except json.JSONDecodeError:
            raise DPKerasError(f"{self.path}: train_attr/training_script is not valid JSON; "
                               "the graph is corrupt") from None

    def compute_prec(self):
        """``training.mixed_precision.compute_prec`` of the stored script (``"float16"`` /
        ``"bfloat16"``: the hidden layers ran in it), ``None`` without mixed precision."""
        training = (self.training_script() or {}).get("training")
        mp = training.get("mixed_precision") if isinstance(training, dict) else None
        return mp.get("compute_prec") if isinstance(mp, dict) else None

    def model_section(self, head=""):
        """The model section: the architecture read from the graph itself
        (:func:`dpkeras.io.graph_arch.infer_model`), checked against and completed by the stored
        training script when there is one."""
        script = (self.training_script() or {}).get("model")
        if script is not None and ("fitting_net_dict" in script or "model_dict" in script):
            script = _head_script(self.path, script, head)
        names = (script or {}).get("fitting_net", {}).get("layer_name")
        graph_model = infer_model(self, self.index, head, names)
        if script is None:
            return graph_model
        if script.get("spin"):
            raise DPKerasError(f"{self.path}: a spin model (model.spin); dpkeras does not "
                               "implement DeePMD-kit's spin models")
        # a compressed graph's script keeps `dp compress`'s section: the tables say it all
        script = {k: v for k, v in script.items() if k != "compress"}
        # mixed precision: the networks were stored in output_prec (float32)
        script = mixed_precision_model(script, self.training_script().get("training"))
        return merge_with_script(self.path, graph_model, _current_keys(script))


# keys older DeePMD-kit releases wrote into their training scripts, and today's names
_OLD_KEYS = {"smooth_type_embdding": "smooth_type_embedding"}


def _current_keys(section):
    """A stored script with older releases' key spellings renamed (hybrid members too)."""
    if isinstance(section, list):
        return [_current_keys(x) for x in section]
    if not isinstance(section, dict):
        return section
    return {_OLD_KEYS.get(k, k): _current_keys(v) for k, v in section.items()}


def _head_script(path, script, head):
    """One head's single-task model section of a DeePMD-kit 2.2 multi-task script."""
    name = head[1:]
    fits = script.get("fitting_net_dict") or {}
    if name not in fits:
        raise DPKerasError(f"{path}: no head {name!r} in the multi-task training script "
                           f"(heads: {sorted(fits)})")
    out = {k: v for k, v in script.items() if k not in ("fitting_net_dict", "model_dict")}
    out["fitting_net"] = fits[name]
    return out


def _vec(x):
    """A bias or timestep stored as ``[N]`` (DeePMD-kit >= 2.1) or ``[1, N]`` (older)."""
    return None if x is None else np.asarray(x).reshape(-1)


def _embedding_weights(g, prefix, suffix, nlayer, resnet_dt=True):
    w = [g.const(f"{prefix}/matrix_{k + 1}{suffix}") for k in range(nlayer)]
    b = [_vec(g.const(f"{prefix}/bias_{k + 1}{suffix}")) for k in range(nlayer)]
    # TF creates a timestep only on residual layers, stored as [1, out]
    idt = [_vec(g.consts.get(f"{prefix}/idt_{k + 1}{suffix}")) if resnet_dt else None
           for k in range(nlayer)]
    return {"w": w, "b": b, "idt": idt}


def _fitting_weights(g, suffix, resnet_dt=True, layer_name=None, head=""):
    """Weights of one fitting net: its layers in data-flow order (``layer_{k}{suffix}``, 2.2's
    shared ``share_{name}{suffix}``, then the output layer ``final_layer{suffix}``); ``suffix``
    ``_type_{t}`` for per-type nets, ``""`` for the one net of a type-embedded model, plus a
    head's ``_<head>`` in a united multi-task graph."""
    scopes = fitting_layers(g, g.index, suffix, layer_name, head)
    if not scopes:
        raise DPKerasError(f"{g.path}: the frozen graph has no fitting net layer_0{suffix}; "
                           "this graph was not made by a DeePMD-kit model kind dpkeras reads")
    hidden, final = scopes[:-1], scopes[-1]
    # DeePMD-kit only creates a timestep where the layer is residual (same width)
    out = {"w": [g.const(f"{s}/matrix") for s in hidden],
           "b": [_vec(g.const(f"{s}/bias")) for s in hidden],
           "idt": [_vec(g.consts.get(f"{s}/idt")) if resnet_dt else None for s in hidden]}
    out["w_out"] = g.const(f"{final}/matrix")
    out["b_out"] = _vec(g.consts.get(f"{final}/bias", np.zeros(out["w_out"].shape[1])))
    return out


def read_graph(path):
    """Parse any frozen graph dpkeras reads (energy and ``dipole``/``polar`` models of every
    DeePMD-kit era) once. Returns ``((model_config, weights), None, compute_prec)`` for a
    single-task graph, ``(None, {head: (model_config, weights)}, compute_prec)`` in the stored
    order for a DeePMD-kit 2.2 united multi-task graph (:func:`graph_heads`); ``compute_prec``:
    the precision its hidden layers ran in (``training.mixed_precision``) or ``None``."""
    g = FrozenGraph(path)
    heads = graph_heads(g)
    if heads:
        return None, {h: read_head(g, h, heads) for h in heads}, g.compute_prec()
    return read_head(g, None, heads), None, g.compute_prec()


def read_head(g, head, heads):
    """``(model_config, weights)`` of head ``head`` of graph ``g`` (``None``: single-task)."""
    if head is not None and head not in heads:
        raise DPKerasError(f"{g.path}: " + (f"no head {head!r} (heads: {heads})" if heads else
                           f"a single-task graph has no head {head!r}"))
    sfx = f"_{head}" if head is not None else ""
    model = g.model_section(sfx)
    if model["fitting_net"].get("type", "ener") in ("dipole", "polar"):
        return _read_tensor_model(g, model, sfx)
    return _read_energy_model(g, model, sfx)


def graph_heads(g):
    """The heads of a DeePMD-kit 2.2 united multi-task graph (``--united-model``: suffixed
    ``fitting_attr_<head>/...``), in the stored order; ``[]`` for a single-task graph."""
    if isinstance(g, str):
        g = FrozenGraph(g)
    if g.scalar_attr("model_attr/model_type") != "multi_task":
        return []
    script = (g.training_script() or {}).get("model", {})
    names = list(script.get("fitting_net_dict") or {})
    if not names:
        raise DPKerasError(f"{g.path}: a multi-task graph without its training script; "
                           "dpkeras needs the script to tell the heads apart")
    return names


def _read_tensor_model(g, model, sfx):
    """``se_e2_a`` + ``dipole``/``polar`` (DeePMD-kit's ``DipoleModel``/``PolarModel``): per-type
    fitting nets for the types of ``model_attr/sel_type`` and, for ``polar``,
    ``fitting_attr/t_constant_matrix``."""
    dcfg, fcfg = model["descriptor"], model["fitting_net"]
    ftype = fcfg["type"]
    if dcfg.get("type") not in ("se_e2_a", "se_a"):
        raise DPKerasError(f"{g.path}: a {ftype} model on the {dcfg.get('type')!r} descriptor "
                           "is not supported yet (supported: se_e2_a)")
    ntypes = len(model["type_map"])
    sel_type = fcfg["sel_type"]
    desc = _read_se_descriptor(g, dcfg, ntypes, "")
    fresnet = fcfg.get("resnet_dt", True)
    weights = dict(desc, fitting=[_fitting_weights(g, f"_type_{t}{sfx}", fresnet,
                                                   fcfg.get("layer_name"), sfx)
                                  for t in sel_type])
    if ftype == "polar":
        name = f"fitting_attr{sfx}/t_constant_matrix"
        if name in g.consts:   # DeePMD-kit >= 3.0.2
            shift = np.asarray(g.consts[name], np.float64).reshape(ntypes)
        else:   # older graphs bake scale and shift into anonymous constants, one per sel type
            scale = fcfg.get("scale", 1.0)
            scale = list(scale) if isinstance(scale, list) else [float(scale)] * ntypes
            shift = np.zeros(ntypes)
            for t, (c, sc) in zip(sel_type, _baked_polar_constants(g, len(sel_type))):
                shift[t], scale[t] = c, sc
            model = dict(model, fitting_net=dict(fcfg, scale=scale))
        weights["constant_matrix"] = shift
    return model, weights


def _baked_polar_constants(g, n):
    """``(shift, scale)`` per selected type of a polar graph older than DeePMD-kit 3.0.2: the
    atomic polarizability is ``scale * R^T A R + shift * I``, with ``shift`` a scalar Const
    multiplying an ``eye`` and ``scale`` a scalar Const multiplying the other term."""
    idx = g.index

    def scalar(node):
        for inp in node.input:
            src = idx.producer(inp)
            if src is not None and src.op == "Const" and src.name in g.consts \
                    and g.consts[src.name].size == 1:
                return float(np.ravel(g.consts[src.name])[0]), src.name
        return None, None

    out = []
    for node in idx.ops("Mul"):
        srcs = [idx.producer(i) for i in node.input]
        if not any(s is not None and s.name.split("/")[0].startswith("eye") for s in srcs):
            continue
        shift, _ = scalar(node)
        if shift is None:
            continue
        scale = 1.0
        for add in idx.uses(node.name):
            for inp in add.input:
                other = idx.producer(inp)
                if other is not None and other.name != node.name and other.op == "Mul":
                    value, _ = scalar(other)
                    scale = value if value is not None else scale
        out.append((shift, scale))
    if len(out) != n:
        raise DPKerasError(f"{g.path}: found {len(out)} polarizability shifts for {n} selected "
                           "types; the polar graph's layout is not one dpkeras can read")
    return out


def _read_energy_model(g, model, sfx):
    """``se_e2_a``/``se_e2_r``/``se_e3``/``hybrid``/``se_atten``/``se_atten_v2`` + ``ener``.

    Returns ``(model_config, weights)``: the model section (DeePMD-kit keys) and the variables
    dict of :meth:`dpkeras.model.ener.DeepmdModel.get_variables`."""
    dcfg, fcfg = model["descriptor"], model["fitting_net"]
    ntypes = len(model["type_map"])
    # a type embedding: attention descriptors, se_e2_a with model.type_embedding (se_e2_a_tebd)
    # and hybrids with an attention member; the fitting is then one net for all types
    te = _type_embedding_weights(g, model) if "type_embed_net/matrix_1" in g.consts else None
    if dcfg["type"] == "hybrid":
        desc = {"hybrid": [_read_descriptor(g, d, ntypes, f"_{k}", te)
                           for k, d in enumerate(dcfg["list"])]}
    else:
        desc = _read_descriptor(g, dcfg, ntypes, "", te)
    fresnet = fcfg.get("resnet_dt", True)
    suffixes = [sfx] if te is not None else [f"_type_{t}{sfx}" for t in range(ntypes)]
    fitting = [_fitting_weights(g, s, fresnet, fcfg.get("layer_name"), sfx) for s in suffixes]
    weights = dict(desc, fitting=fitting, bias_atom_e=_bias_atom_e(g, ntypes, sfx))
    weights.update(_param_stats(g, sfx))
    return model, weights


def _param_stats(g, sfx=""):
    """fparam/aparam normalization (``fitting_attr/t_{f,a}param_{avg,istd}``), when present."""
    out = {}
    for p in ("fparam", "aparam"):
        if f"fitting_attr{sfx}/t_{p}_avg" in g.consts:
            out[f"{p}_avg"] = g.consts[f"fitting_attr{sfx}/t_{p}_avg"].reshape(-1)
            out[f"{p}_inv_std"] = g.const(f"fitting_attr{sfx}/t_{p}_istd").reshape(-1)
    return out


def _read_descriptor(g, dcfg, ntypes, sfx, te):
    """One descriptor's weights (``sfx``: ``_k`` for the k-th member of a hybrid, whose constants
    are ``descrpt_attr_k/...``, ``filter_type_i_k/...``, ``attention_layer_i_k/...``); ``te``: the
    model's type embedding weights, or ``None``."""
    if dcfg["type"] in ("se_atten", "se_atten_v2", "dpa1"):
        out = _read_attention_descriptor(g, dcfg, ntypes, sfx)
    else:
        out = _read_se_descriptor(g, dcfg, ntypes, sfx, te is not None)
    if te is not None:
        out["type_embedding"] = te
    return out


def _stats(g, sfx, ntypes, ncol):
    davg = g.const(f"descrpt_attr{sfx}/t_avg")
    nnei = davg.size // (ntypes * ncol)
    return (davg.reshape(ntypes, nnei, ncol),
            g.const(f"descrpt_attr{sfx}/t_std").reshape(ntypes, nnei, ncol))


def _read_se_descriptor(g, dcfg, ntypes, sfx, tebd=False):
    """Statistics and embedding nets of a per-type descriptor; with a type embedding (``tebd``,
    se_e2_a only) its one net ``filter_type_all{sfx}/matrix_k``."""
    dtype = dcfg["type"]
    davg, dstd = _stats(g, sfx, ntypes, 1 if dtype in ("se_e2_r", "se_r") else 4)
    nlayer = len(dcfg["neuron"])
    resnet_dt = dcfg.get("resnet_dt", False)
    embeddings = {}
    if dcfg.get("tabulated"):   # dp compress: DeePMD-kit's tables (dpkeras.tabulate)
        tables = compressed_tables(g, g.index, sfx, ntypes, dcfg["sel"])
        return {"davg": davg, "dstd": dstd,
                "embeddings": {k: {"table": t} for k, (t, _, _) in tables.items()}}
    if tebd:
        if dtype not in ("se_e2_a", "se_a"):
            raise DPKerasError(f"{g.path}: a type-embedded {dtype} descriptor is not supported "
                               "(only se_e2_a takes the type embedding)")
        embeddings[()] = _embedding_weights(g, f"filter_type_all{sfx}", "", nlayer, resnet_dt)
    elif dtype in ("se_e3", "se_t", "se_a_3be"):   # nets per neighbor-type pair a <= b
        for a in range(ntypes):
            for b in range(a, ntypes):
                embeddings[(a, b)] = _embedding_weights(g, f"filter_type_all{sfx}", f"_{a}_{b}",
                                                        nlayer, resnet_dt)
    elif dcfg.get("type_one_side", False):
        for tj in range(ntypes):
            embeddings[(tj,)] = _embedding_weights(g, f"filter_type_all{sfx}", f"_{tj}",
                                                   nlayer, resnet_dt)
    else:
        excl = {tuple(sorted(p)) for p in dcfg.get("exclude_types", [])}
        for ti in range(ntypes):
            for tj in range(ntypes):
                if tuple(sorted((ti, tj))) in excl:
                    continue
                embeddings[(ti, tj)] = _embedding_weights(g, f"filter_type_{ti}{sfx}", f"_{tj}",
                                                          nlayer, resnet_dt)
    return {"davg": davg, "dstd": dstd, "embeddings": embeddings}


def _bias_atom_e(g, ntypes, sfx=""):
    # before DeePMD-kit 2.2 the bias lives only in the output layer's bias: zero here
    bias = np.asarray(g.consts.get(f"fitting_attr{sfx}/t_bias_atom_e", np.zeros(ntypes)),
                      np.float64).reshape(ntypes)
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
        te["b"].append(_vec(g.consts.get(f"type_embed_net/bias_{k + 1}")))
        te["idt"].append(_vec(g.consts.get(f"type_embed_net/idt_{k + 1}")))
    return te


def _layer_norm(g, scope):
    """``(gamma, beta)`` of an attention layer's norm: ``{scope}/layer_normalization`` (3.x) or
    Keras' uniquified ``layer_normalization_<n>`` (2.x)."""
    names = sorted(n[len(scope) + 1:-len("/gamma")] for n in g.consts
                   if n.startswith(scope + "/layer_normalization") and n.endswith("/gamma"))
    if len(names) != 1:
        raise DPKerasError(f"{g.path}: {len(names)} layer norms in {scope} (expected one "
                           f"{scope}/layer_normalization*/gamma); not a graph dpkeras can read")
    return g.const(f"{scope}/{names[0]}/gamma"), g.const(f"{scope}/{names[0]}/beta")


def _read_attention_descriptor(g, dcfg, ntypes, sfx):
    """``se_atten``/``se_atten_v2`` (TF): statistics, the one embedding net (and in strip mode
    the type-pair net ``..._two_side_ebd``) and the attention layers."""
    davg, dstd = _stats(g, sfx, ntypes, 4)
    nlayer = len(dcfg["neuron"])
    resnet_dt = dcfg.get("resnet_dt", False)
    prefix = f"filter_type_all{sfx}"
    if dcfg.get("tabulated"):   # dp compress: DeePMD-kit's tables (dpkeras.tabulate)
        table, _, _, pair, _ = compressed_attention(g, g.index, prefix)
        return {"davg": davg, "dstd": dstd, "embeddings": {(): {"table": table}},
                "attention": [], "embedding_strip": {"table": pair}}
    # DeePMD-kit <= 2.2.2 repeats a hybrid member's suffix on the embedding net's names
    rep = sfx if sfx and f"{prefix}/matrix_1{sfx}" in g.consts else ""
    embedding = _embedding_weights(g, prefix, rep, nlayer, resnet_dt)
    strip = dcfg.get("type") == "se_atten_v2" or dcfg.get("tebd_input_mode") == "strip"
    attention = []
    for i in range(int(dcfg.get("attn_layer", 2))):
        p = f"attention_layer_{i}{sfx}"
        gamma, beta = _layer_norm(g, p)
        attention.append({
            "wq": g.const(f"{p}/c_query/matrix"), "bq": _vec(g.const(f"{p}/c_query/bias")),
            "wk": g.const(f"{p}/c_key/matrix"), "bk": _vec(g.const(f"{p}/c_key/bias")),
            "wv": g.const(f"{p}/c_value/matrix"), "bv": _vec(g.const(f"{p}/c_value/bias")),
            "wo": g.const(f"{p}/c_out/matrix"), "bo": _vec(g.const(f"{p}/c_out/bias")),
            "gamma": _vec(gamma), "beta": _vec(beta)})
    out = {"davg": davg, "dstd": dstd, "embeddings": {(): embedding}, "attention": attention}
    if strip:   # the type-pair net (DeePMD-kit's "two side" embedding)
        out["embedding_strip"] = _embedding_weights(g, prefix, "_two_side_ebd" + rep, nlayer,
                                                    resnet_dt)
    return out
