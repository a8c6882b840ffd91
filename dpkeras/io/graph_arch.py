"""The architecture of a DeePMD-kit frozen graph, read from the graph itself.

Every hyper-parameter that changes the numbers is recovered without running the graph and
without ``train_attr/training_script`` (which DeePMD-kit 1.x graphs, the graphs of DeePMD-kit's
own test suite and converted graphs do not have):

* the environment op (``DescrptSeA``/``ProdEnvMatA``, ``DescrptSeR``/``ProdEnvMatR``,
  ``ProdEnvMatAMix``; one per hybrid member, told apart by their ``descrpt_attr{_k}/t_avg`` input)
  gives the kind, ``rcut``, ``rcut_smth`` and ``sel``;
* the names of the embedding nets give ``type_one_side``, ``exclude_types``, se_e3 and the type
  embedding; their shapes the widths; ``idt`` constants ``resnet_dt``; the op after each
  ``MatMul``/``BiasAdd`` the activation; their dtype the precision;
* attention layers: their count, ``attn`` (the query width), ``attn_dotr`` (a product of the
  neighbor directions with themselves), ``attn_mask`` (a diagonal mask), the smooth type embedding
  (the ``20.0`` shift of the attention weights) and ``ln_eps`` (the layer norm's epsilon);
* the fitting net: its layers, found by following the data flow between the ``layer_*``,
  ``share_*`` and ``final_layer*`` scopes (so DeePMD-kit 2.2's ``layer_name`` sharing reads like
  any net), ``numb_fparam``/``numb_aparam`` (``fitting_attr/dfparam``, ``daparam``), and for
  tensor models ``model_attr/model_type``, ``model_attr/sel_type`` and polar's ``fit_diag``.
* compressed graphs (``dp compress``): the tables of the ``TabulateFusionSeA``/``SeR`` ops
  (:func:`compressed_tables`) and of ``TabulateFusionSeAtten`` with its type-pair table
  (:func:`compressed_attention`); only the nets' last width is known then.

:func:`infer_model` returns a DeePMD-kit ``model`` section (keys as in ``input.json``);
:func:`dpkeras.io.graph_script.merge_with_script` checks it against a stored training script.
"""

import re
from collections import defaultdict

import numpy as np

from dpkeras.errors import DPKerasError

# environment-matrix ops of every era: 1.x DescrptSe*, 2.x/3.x ProdEnvMat*
_ENV_OPS = {"DescrptSeA": "a", "ProdEnvMatA": "a", "DescrptSeR": "r", "ProdEnvMatR": "r",
            "ProdEnvMatAMix": "mix", "DescrptSeAEf": "ef", "DescrptSeAEfPara": "ef",
            "DescrptSeAEfVert": "ef", "ProdEnvMatASpin": "spin", "DescrptSeAMask": "mask",
            "Descrpt": "loc_frame", "DescrptNorot": "norot"}
_TABULATE_OPS = ("TabulateFusion", "TabulateFusionSeA", "TabulateFusionSeAtten",
                 "TabulateFusionSeR", "TabulateFusionSeT", "TabulateFusionSeTTebd")
_ACTIVATION_OPS = {"Tanh": "tanh", "Relu": "relu", "Relu6": "relu6", "Softplus": "softplus",
                   "Sigmoid": "sigmoid", "GeluCustom": "gelu", "Gelu": "gelu"}
_PASS_THROUGH = ("Identity", "Reshape", "Cast")


class GraphIndex:
    """The non-constant structure of a GraphDef: nodes by name and who consumes each."""

    def __init__(self, nodes, path):
        self.path = path
        self.nodes = {n.name: n for n in nodes}
        self.consumers = defaultdict(list)
        for n in nodes:
            for inp in n.input:
                self.consumers[inp.lstrip("^").split(":")[0]].append(n)

    def ops(self, *types):
        """Nodes of the given op types outside the gradient part of the graph."""
        return [n for n in self.nodes.values()
                if n.op in types and not n.name.startswith("gradients")]

    def uses(self, name, through_cast=False):
        """Consumers of ``name`` (through its ``/read`` Identity when it is a variable;
        ``through_cast``: also through ``Cast``, as a mixed-precision graph casts its weights
        to ``compute_prec`` before each product)."""
        passes = ("Identity", "Cast") if through_cast else ("Identity",)
        out = []
        for c in self.consumers.get(name, []):
            if c.name.startswith("gradients"):
                continue
            out += self.uses(c.name, through_cast) if c.op in passes else [c]
        return out

    def producer(self, name, skip=_PASS_THROUGH):
        """The node behind input ``name``, looking through Identity/Reshape/Cast."""
        node = self.nodes.get(name.lstrip("^").split(":")[0])
        while node is not None and node.op in skip and node.input:
            node = self.nodes.get(node.input[0].lstrip("^").split(":")[0])
        return node


def _attr(node, key, default=None):
    if key not in node.attr:
        return default
    v = node.attr[key]
    kind = v.WhichOneof("value")
    if kind == "list":
        return list(v.list.i) or list(v.list.f)
    return getattr(v, kind) if kind else default


def _f32(x):
    """A float32 op attribute (3.799999952316284) as the decimal the user wrote (3.8); the
    environment matrix rounds its cut-offs to float32 as DeePMD-kit's op does."""
    return float(f"{float(x):.7g}")


def activation_after(index, matrix):
    """The activation applied after the product with constant ``matrix``: the op consuming its
    ``MatMul`` (+ bias). ``linear`` when the output goes straight on (reshape, skip, timestep)."""
    mms = [c for c in index.uses(matrix, through_cast=True)
           if c.op in ("MatMul", "BatchMatMulV2")]
    if not mms:
        raise DPKerasError(f"{index.path}: the weight {matrix!r} feeds no product; the graph "
                           "is not a DeePMD-kit model dpkeras can read")
    node = mms[0]
    nxt = [c for c in index.uses(node.name) if c.op in ("BiasAdd", "Add", "AddV2")]
    if nxt and any("bias" in getattr(index.producer(i), "name", i) for i in nxt[0].input):
        node = nxt[0]
    frontier, seen = [node], set()
    for _ in range(4):   # composite forms (gelu written out) a few ops downstream
        new = []
        for n in frontier:
            for c in index.uses(n.name):
                if c.name in seen:
                    continue
                seen.add(c.name)
                if c.op in _ACTIVATION_OPS and n is node:
                    if c.op == "Gelu" and not _attr(c, "approximate", True):
                        return "gelu_tf"
                    return _ACTIVATION_OPS[c.op]
                if c.op == "Erf":
                    return "gelu_tf"
                if c.op in ("Pow",) or (c.op == "Tanh" and n is not node):
                    return "gelu"
                if c.op in ("Mul", "AddV2", "Add", "RealDiv"):
                    new.append(c)
        frontier = new
    return "linear"


def _chain(consts, prefix, suffix=""):
    """The widths of the net ``{prefix}/matrix_{k}{suffix}`` k = 1, 2, ... and whether any layer
    has a timestep: ``(neuron, resnet_dt, in_dim, dtype)`` or ``None``."""
    neuron, idt, k = [], False, 1
    while f"{prefix}/matrix_{k}{suffix}" in consts:
        w = consts[f"{prefix}/matrix_{k}{suffix}"]
        if k == 1:
            in_dim, dtype = w.shape[0], w.dtype
        neuron.append(int(w.shape[1]))
        idt = idt or f"{prefix}/idt_{k}{suffix}" in consts
        k += 1
    if not neuron:
        return None
    return neuron, idt, int(in_dim), dtype


def _precision(dtype):
    return "float32" if dtype == np.float32 else "float64"


def _member_suffix(node):
    """``''`` or ``'_k'``: which ``descrpt_attr{sfx}`` statistics the env op reads."""
    for inp in node.input:
        m = re.match(r"descrpt_attr(_\d+)?/t_avg", inp)
        if m:
            return m.group(1) or ""
    return ""


def _env_members(g, index):
    """One ``(suffix, kind, rcut, rcut_smth, sel)`` per environment op, in member order."""
    tab = [n for n in index.ops(*_TABULATE_OPS) if n.op not in (
        "TabulateFusion", "TabulateFusionSeA", "TabulateFusionSeR", "TabulateFusionSeAtten")]
    if tab:
        raise DPKerasError(
            f"{g.path}: a compressed graph with op {tab[0].op} (`dp compress` of an se_e3 or "
            "type-embedded se_e2_a model); dpkeras reads compressed se_e2_a, se_e2_r and "
            "strip-mode se_atten graphs only: use the graph from before `dp compress`")
    out = []
    for node in index.ops(*_ENV_OPS):
        kind = _ENV_OPS[node.op]
        if kind == "loc_frame" or kind == "norot":
            raise DPKerasError(
                f"{g.path}: a DeePMD-kit 0.12-era graph (op {node.op}); convert it first with "
                "`dp convert-from 0.12 -i old.pb -o new.pb` (DeePMD-kit 1.x-2.x)")
        if kind not in ("a", "r", "mix"):
            raise DPKerasError(f"{g.path}: descriptor op {node.op} is not supported by dpkeras "
                               "(supported: se_e2_a, se_e2_r, se_e3, se_atten, hybrids)")
        if kind == "r":
            rcut, smth, sel = _attr(node, "rcut"), _attr(node, "rcut_smth"), _attr(node, "sel")
        else:
            rcut, smth = _attr(node, "rcut_r"), _attr(node, "rcut_r_smth")
            sel = _attr(node, "sel_a")
        out.append((_member_suffix(node), kind, _f32(rcut), _f32(smth), [int(s) for s in sel]))
    if not out:
        unknown = sorted({n.op for n in index.nodes.values() if n.op.startswith(
            ("Descrpt", "ProdEnv"))})
        raise DPKerasError(f"{g.path}: no DeePMD-kit environment op in the graph"
                           + (f" (unknown ops {unknown})" if unknown else "")
                           + "; not a DeePMD-kit model dpkeras can read")
    return sorted(out, key=lambda m: int(m[0][1:] or -1))


def _op_tables(g, index, node):
    """``(table [nspline, 6 M], table_info [6])`` of a tabulate op: the constants behind its
    first two inputs (an error naming the op when they are not constants)."""
    table, info = (g.consts.get(getattr(index.producer(i), "name", "")) for i in node.input[:2])
    if table is None or info is None:
        raise DPKerasError(f"{g.path}: the tables of {node.name} are not constants")
    return np.asarray(table), [float(x) for x in np.ravel(info)]


def _neighbor_block(g, index, node, sel):
    """The neighbor type whose block of the environment matrix a tabulate op reads: its last
    input is a ``Slice`` of the matrix starting at that block's first slot (``None`` if not
    visible)."""
    sl = index.producer(node.input[-1])
    if sl is None or sl.op != "Slice" or len(sl.input) < 2:
        return None
    begin = g.consts.get(getattr(index.producer(sl.input[1]), "name", ""))
    if begin is None or np.size(begin) != 2:
        return None
    starts = [int(x) for x in np.cumsum([0] + list(sel[:-1]))]
    width = 1 if node.op == "TabulateFusionSeR" else 4
    start = int(np.ravel(begin)[1]) // width
    return starts.index(start) if start in starts and len(set(starts)) == len(starts) else None


def compressed_tables(g, index, sfx, ntypes, sel=None):
    """The tables of a compressed per-type descriptor (``TabulateFusionSeA``/``SeR`` ops in the
    scopes ``filter_type_{i}{sfx}``, or ``filter_type_all{sfx}`` with type_one_side): ``{net key:
    (table [nspline, 6 M], table_info [6], M)}``, keys ``(t_i, t_j)`` or ``(t_j,)``; ``{}`` for an
    uncompressed graph. Each op's neighbor type is the block of the environment matrix it reads
    (with ``sel``), else its place in the scope (the k-th op: the k-th neighbor type); excluded
    pairs have no op."""
    # TabulateFusion: the se_e2_a op's name until October 2021 (the same inputs)
    ops = [n for n in index.ops("TabulateFusion", "TabulateFusionSeA", "TabulateFusionSeR")]
    out = {}
    for n in ops:
        scope = n.name.split("/")[0]
        m = re.fullmatch(r"filter_type_(all|\d+)" + re.escape(sfx), scope)
        if not m or n.name.count("/") != 1:
            continue
        k = re.fullmatch(r"TabulateFusion(?:Se[AR])?(?:_(\d+))?", n.name.split("/")[1])
        if not k:
            continue
        table, info = _op_tables(g, index, n)
        tj = _neighbor_block(g, index, n, sel) if sel is not None else None
        out.setdefault(m.group(1), []).append((int(k.group(1) or 0), tj, table, info,
                                                int(_attr(n, "last_layer_size"))))
    tables = {}
    for scope, items in out.items():
        items.sort(key=lambda x: x[0])
        prefix = () if scope == "all" else (int(scope),)
        if len(items) > ntypes:
            raise DPKerasError(f"{g.path}: {len(items)} tables in filter_type_{scope}{sfx} for "
                               f"{ntypes} types")
        if any(tj is None for _, tj, *_ in items):
            if len(items) < ntypes:   # excluded pairs, and which ones is not visible
                raise DPKerasError(f"{g.path}: a compressed graph with exclude_types whose "
                                   "tables dpkeras cannot match to their neighbor types")
            items = [(k, tj, *rest) for tj, (k, _, *rest) in enumerate(items)]
        for _, tj, table, info, width in items:
            tables[prefix + (tj,)] = (table, info, width)
    return tables


def compressed_attention(g, index, prefix):
    """A compressed strip-mode se_atten (``dp compress``: op ``TabulateFusionSeAtten`` in
    ``prefix``, attn_layer 0): ``(table [nspline, 6 M], table_info [6], M, pair table
    [(ntypes + 1)^2, M], smooth)``, the pair table being the type-pair net's value at every
    (center, neighbor) type pair (DeePMD-kit's ``two_embd``, looked up, times the switch when
    ``smooth``); ``None`` for an uncompressed graph."""
    ops = [n for n in index.ops("TabulateFusionSeAtten") if n.name.split("/")[0] == prefix]
    if not ops:
        return None
    if len(ops) != 1:
        raise DPKerasError(f"{g.path}: {len(ops)} TabulateFusionSeAtten ops in {prefix}")
    n = ops[0]
    table, info = _op_tables(g, index, n)
    lookup = index.producer(n.input[4])
    smooth = lookup is not None and lookup.op == "Mul"
    if smooth:   # se_atten_v2 / smooth_type_embedding: E_ij times the switch of r_ij
        lookup = next((p for p in map(index.producer, lookup.input)
                       if p is not None and p.op in ("GatherV2", "ResourceGather")), None)
    pair = None
    if lookup is not None and lookup.op in ("GatherV2", "ResourceGather"):
        pair = g.consts.get(getattr(index.producer(lookup.input[0]), "name", ""))
    if pair is None:
        raise DPKerasError(f"{g.path}: the type-pair table of {n.name} is not a constant; not "
                           "a graph dpkeras can read")
    return table, info, int(_attr(n, "last_layer_size")), np.asarray(pair), smooth


def _axis_neuron(g, prefix):
    """``axis_neuron`` from the slice of the embedding matrix (``[-1, -1, axis]``), or ``None``."""
    for name, v in g.consts.items():
        if name.startswith(prefix + "/Slice") and name.endswith("/size") and v.size == 3 \
                and v[2] > 0:
            return int(v[2])
    return None


def _se_member(g, index, sfx, kind, rcut, smth, sel, ntypes, tebd_dim=0):
    c = g.consts
    d = {"rcut": rcut, "rcut_smth": smth, "sel": sel}
    if kind == "r":
        d["type"] = "se_e2_r"
    tables = compressed_tables(g, index, sfx, ntypes, sel)
    if tables:   # dp compress: the nets are tables (only the last width is known)
        d.setdefault("type", "se_e2_a")
        d["type_one_side"] = len(next(iter(tables))) == 1
        missing = sorted({tuple(sorted((i, j))) for i in range(ntypes) for j in range(ntypes)
                          if (i, j) not in tables}) if not d["type_one_side"] else []
        if missing:   # excluded pairs have no table
            d["exclude_types"] = [list(p) for p in missing]
        d["neuron"] = [next(iter(tables.values()))[2]]
        d["tabulated"] = {"_".join(map(str, k)): {"nspline": int(t.shape[0]), "table_info": i}
                          for k, (t, i, _) in tables.items()}
        if d["type"] == "se_e2_a":
            axis = _axis_neuron(g, f"filter_type_{'all' if d['type_one_side'] else 0}{sfx}")
            if axis is not None:
                d["axis_neuron"] = axis
        return d
    if f"filter_type_all{sfx}/matrix_1_0_0" in c:      # se_e3: one net per type pair a <= b
        d["type"] = "se_e3"
        prefix, suffix = f"filter_type_all{sfx}", "_0_0"
    elif f"filter_type_all{sfx}/matrix_1" in c:         # se_e2_a with the type embedding
        d["type"] = "se_e2_a"   # fed [s, e_j] (type_one_side) or [s, e_j, e_i]
        prefix, suffix = f"filter_type_all{sfx}", ""
        d["type_one_side"] = c[f"{prefix}/matrix_1"].shape[0] == 1 + tebd_dim
    elif f"filter_type_all{sfx}/matrix_1_0" in c:       # one net per neighbor type
        d.setdefault("type", "se_e2_a")
        d["type_one_side"] = True
        prefix, suffix = f"filter_type_all{sfx}", "_0"
    else:
        d.setdefault("type", "se_e2_a")
        d["type_one_side"] = False
        pairs = [(i, j) for i in range(ntypes) for j in range(ntypes)
                 if f"filter_type_{i}{sfx}/matrix_1_{j}" in c]
        if not pairs:
            raise DPKerasError(f"{g.path}: no embedding net filter_type_*{sfx}/matrix_1_* in "
                               "the graph; not a DeePMD-kit model dpkeras can read")
        missing = [[i, j] for i in range(ntypes) for j in range(i, ntypes)
                   if (i, j) not in pairs and (j, i) not in pairs]
        d["exclude_types"] = missing
        i, j = pairs[0]
        prefix, suffix = f"filter_type_{i}{sfx}", f"_{j}"
    neuron, idt, _, dtype = _chain(c, prefix, suffix)
    d.update(neuron=neuron, activation_function=activation_after(
        index, f"{prefix}/matrix_1{suffix}"), precision=_precision(dtype))
    if idt:
        d["resnet_dt"] = True
    if d["type"] == "se_e2_a":
        axis = _axis_neuron(g, prefix)
        if axis is not None:
            d["axis_neuron"] = axis
    return d


def _attention_member(g, index, sfx, rcut, smth, sel, tebd_dim):
    c = g.consts
    prefix = f"filter_type_all{sfx}"
    compressed = compressed_attention(g, index, prefix)
    if compressed is not None:   # dp compress: the nets are tables (only the last width is known)
        table, info, width, pair, smooth = compressed
        d = {"type": "se_atten", "rcut": rcut, "rcut_smth": smth, "sel": int(sum(sel)),
             "neuron": [width], "precision": _precision(table.dtype),
             "tebd_input_mode": "strip", "type_one_side": False, "attn_layer": 0,
             "smooth_type_embedding": smooth,
             "tabulated": {"all": {"nspline": int(table.shape[0]), "table_info": info}}}
        axis = _axis_neuron(g, prefix)
        if axis is not None:
            d["axis_neuron"] = axis
        return d
    chain = _chain(c, prefix)
    if chain is None:
        raise DPKerasError(f"{g.path}: no embedding net {prefix}/matrix_1 for the se_atten "
                           "descriptor; not a DeePMD-kit model dpkeras can read")
    neuron, idt, in_dim, dtype = chain
    strip = _chain(c, prefix, "_two_side_ebd")
    d = {"type": "se_atten", "rcut": rcut, "rcut_smth": smth, "sel": int(sum(sel)),
         "neuron": neuron, "activation_function": activation_after(index, f"{prefix}/matrix_1"),
         "precision": _precision(dtype), "tebd_input_mode": "strip" if strip else "concat"}
    if idt:
        d["resnet_dt"] = True
    if tebd_dim:   # the embedding input: [s, e_j(, e_i)] (concat) or the type pair net (strip)
        width = strip[2] if strip else in_dim - 1
        d["type_one_side"] = width == tebd_dim
    layers = 0
    while f"attention_layer_{layers}{sfx}/c_query/matrix" in c:
        layers += 1
    d["attn_layer"] = layers
    if layers:
        scope = f"attention_layer_0{sfx}/"
        d["attn"] = int(c[scope + "c_query/matrix"].shape[1])
        nodes = [n for n in index.nodes.values() if n.name.startswith(scope)]
        d["attn_dotr"] = any(n.op.startswith("BatchMatMul") and len(n.input) == 2 and
                             n.input[0] == n.input[1] for n in nodes)
        d["attn_mask"] = any(n.op.startswith("MatrixDiag") or "/eye" in n.name for n in nodes)
        d["smooth_type_embedding"] = any(
            n.op == "Const" and re.fullmatch(scope + r"(add|sub)(_\d+)?/y", n.name)
            and np.ravel(c.get(n.name, [0.0]))[0] == 20.0 for n in nodes)
        eps = [v for k, v in c.items() if re.fullmatch(
            scope + r"layer_normalization(_\d+)?/(batchnorm/)?add/y", k)]
        if eps:
            d["ln_eps"] = float(np.ravel(eps[0])[0])
    axis = _axis_neuron(g, prefix)
    if axis is not None:
        d["axis_neuron"] = axis
    return d


def _type_embedding(g, index):
    chain = _chain(g.consts, "type_embed_net")
    if chain is None:
        return None
    neuron, idt, _, dtype = chain
    te = {"neuron": neuron, "resnet_dt": idt, "precision": _precision(dtype),
          "activation_function": activation_after(index, "type_embed_net/matrix_1"),
          "use_tebd_bias": "type_embed_net/bias_1" in g.consts}
    return te


def fitting_layers(g, index, suffix, layer_name=None, head=""):
    """The scopes of one fitting net in data-flow order, the output layer last.

    Layers are ``layer_{k}{suffix}``, DeePMD-kit 2.2's shared ``share_{name}_type_{t}`` and
    ``final_layer{suffix}`` (``suffix``: ``_type_{t}`` or ``''``, then a united multi-task
    graph's ``head`` suffix ``_<head>``); each layer's predecessor is the scope its product's
    input comes from. With ``layer_name`` (the stored script's, needed in a united graph where
    heads share every layer) the scopes are named directly."""
    if layer_name:
        tsfx = suffix[:len(suffix) - len(head)] if head else suffix
        last = len(layer_name) - 1
        scopes = [f"share_{n}{tsfx}" if n else
                  (f"final_layer{suffix}" if k == last else f"layer_{k}{suffix}")
                  for k, n in enumerate(layer_name)]
        missing = [sc for sc in scopes if sc + "/matrix" not in g.consts]
        if missing:
            raise DPKerasError(f"{g.path}: the fitting layers {missing} named by layer_name "
                               f"{layer_name} are not in the graph")
        return scopes
    pat = re.compile(r"((?:layer_\d+|share_.+?|final_layer)" + re.escape(suffix) + r")/matrix")
    scopes = [m.group(1) for name in g.consts for m in [pat.fullmatch(name)] if m]
    if not scopes:
        return []
    final = [s for s in scopes if s.startswith("final_layer")]
    if len(final) != 1:   # the output layer may be shared (share_<name>) too: the 1-wide one
        final = [s for s in scopes if g.consts[s + "/matrix"].shape[1] <= 9 and
                 not any(_predecessor(g, index, t, scopes) == s for t in scopes)]
    order = [final[0]] if final else []
    while order:
        prev = _predecessor(g, index, order[0], scopes)
        if prev is None or prev in order:
            break
        order.insert(0, prev)
    if len(order) != len(scopes):
        raise DPKerasError(f"{g.path}: cannot order the fitting layers {sorted(scopes)} of "
                           f"'{suffix or 'the model'}' by their data flow; the graph is not a "
                           "DeePMD-kit fitting net dpkeras can read")
    return order


def _predecessor(g, index, scope, scopes):
    """The fitting layer feeding ``scope``: of the layers its input depends on (skip
    connections reach several), the one deepest in the chain."""
    reach = _reach(index, scope, scopes)
    if not reach:
        return None
    depth = {}

    def chain_depth(s, seen=()):
        if s not in depth:
            ups = [r for r in _reach(index, s, scopes) if r not in seen]
            depth[s] = 1 + max((chain_depth(r, seen + (s,)) for r in ups), default=0)
        return depth[s]

    return max(sorted(reach), key=chain_depth)


def _reach(index, scope, scopes):
    """The fitting-layer scopes the input of ``scope``'s product depends on (the search does not
    pass through another layer)."""
    mms = [c for c in index.uses(scope + "/matrix", through_cast=True)
           if c.op in ("MatMul", "BatchMatMulV2")]
    if not mms:
        return set()
    frontier, seen, found = [mms[0].input[0]], set(), set()
    for _ in range(40):
        new = []
        for name in frontier:
            name = name.lstrip("^").split(":")[0]
            if name in seen or name not in index.nodes:
                continue
            seen.add(name)
            head = name.split("/")[0]
            if head in scopes and head != scope:
                found.add(head)
                continue
            node = index.nodes[name]
            if node.op not in ("Const", "Placeholder"):
                new += list(node.input)
        frontier = new
    return found


def _fitting(g, index, scopes, model_type):
    c = g.consts
    hidden, out = scopes[:-1], scopes[-1]
    f = {"type": model_type, "neuron": [int(c[s + "/matrix"].shape[1]) for s in hidden],
         "precision": _precision(c[out + "/matrix"].dtype)}
    if any(s + "/idt" in c for s in hidden):
        f["resnet_dt"] = True
    if hidden:
        f["activation_function"] = activation_after(index, hidden[0] + "/matrix")
    names = [s[len("share_"):].rsplit("_type_", 1)[0] if s.startswith("share_") else None
             for s in scopes]
    if any(names):
        f["layer_name"] = names
    return f


def _suffix_names(tmpl, g):
    return sorted({m.group(1) for name in g.consts
                   for m in [re.fullmatch(tmpl, name)] if m})


def infer_model(g, index, head="", layer_name=None):
    """The DeePMD-kit ``model`` section of frozen graph ``g`` (a
    :class:`dpkeras.io.deepmd_pb.FrozenGraph`), from its structure alone. ``head``: the suffix
    ``_<head>`` of one head of a DeePMD-kit 2.2 united multi-task graph; ``layer_name``: its
    fitting's ``layer_name`` from the stored script (see :func:`fitting_layers`)."""
    tmap = g.scalar_attr("model_attr/tmap")
    ntypes = int(g.consts["descrpt_attr/ntypes"]) if "descrpt_attr/ntypes" in g.consts else None
    if tmap:
        tmap = tmap.split()
    else:
        if ntypes is None:
            ntypes = int(np.asarray(g.const("descrpt_attr/t_avg")).shape[0])
        tmap = [f"type_{i}" for i in range(ntypes)]   # 1.x graphs may lack model_attr/tmap
    ntypes = len(tmap)
    model = {"type_map": tmap}
    te = _type_embedding(g, index)
    if te is not None:
        model["type_embedding"] = te
    tebd_dim = te["neuron"][-1] if te else 0
    members = []
    for sfx, kind, rcut, smth, sel in _env_members(g, index):
        if kind == "mix":
            members.append(_attention_member(g, index, sfx, rcut, smth, sel, tebd_dim))
        else:
            members.append(_se_member(g, index, sfx, kind, rcut, smth, sel, ntypes, tebd_dim))
    mtype = g.scalar_attr(f"model_attr/model_type{head}") or g.scalar_attr(
        "model_attr/model_type") or "ener"
    if mtype == "multi_task":   # a united graph: a head with sel_type is a tensor head
        dim = g.consts.get(f"model_attr/output_dim{head}")
        mtype = "ener" if dim is None else {3: "dipole", 9: "polar"}.get(int(dim), str(dim))
    mtype = {"original_model": "ener"}.get(mtype, mtype)
    if mtype not in ("ener", "dipole", "polar"):
        raise DPKerasError(f"{g.path}: model_type {mtype!r} is not supported by dpkeras "
                           "(supported: ener, dipole, polar)")
    if te is not None:
        fsuffix = [head]
    else:
        found = _suffix_names(
            r"(?:layer_0|final_layer|share_.+?)_type_(\d+)" + re.escape(head) + "/matrix", g)
        if layer_name:   # a united graph's shared layers carry no head suffix
            found += _suffix_names(r"share_.+?_type_(\d+)/matrix", g)
        types = sorted({int(t) for t in found})
        fsuffix = [f"_type_{t}{head}" for t in types]
    if not fsuffix:
        raise DPKerasError(f"{g.path}: no fitting net in the graph")
    scopes = fitting_layers(g, index, fsuffix[0], layer_name, head)
    fit = _fitting(g, index, scopes, mtype)
    for k, v in (("numb_fparam", "dfparam"), ("numb_aparam", "daparam")):
        name = f"fitting_attr{head}/{v}"
        if mtype == "ener" and name in g.consts and int(g.consts[name]) > 0:
            fit[k] = int(g.consts[name])
    # axis_neuron of the member whose slice was not found: from the fitting input width
    fdim = int(g.consts[scopes[0] + "/matrix"].shape[0]) - fit.get("numb_fparam", 0) - \
        fit.get("numb_aparam", 0) - (tebd_dim if te is not None and mtype == "ener" else 0)
    known = 0
    unknown = []
    for d in members:
        if d["type"] in ("se_e2_r", "se_e3"):
            known += d["neuron"][-1]
        elif "axis_neuron" in d:
            known += d["neuron"][-1] * d["axis_neuron"]
        else:
            unknown.append(d)
    if len(unknown) == 1:
        rest = fdim - known
        if rest <= 0 or rest % unknown[0]["neuron"][-1]:
            raise DPKerasError(f"{g.path}: the fitting input width {fdim} does not fit the "
                               "descriptor; the graph is not a model dpkeras can read")
        unknown[0]["axis_neuron"] = rest // unknown[0]["neuron"][-1]
    elif unknown:
        raise DPKerasError(f"{g.path}: cannot tell the axis_neuron of several hybrid members "
                           "from the graph")
    if mtype in ("dipole", "polar"):
        sel_type = g.consts.get(f"model_attr/sel_type{head}")
        fit["sel_type"] = sorted(int(t) for t in np.ravel(sel_type)) if sel_type is not None \
            else [int(s.split("_type_")[1].split("_")[0]) for s in fsuffix]
        if mtype == "polar":   # per rotation-matrix row (M = the last embedding width) or
            m = members[0]["neuron"][-1]   # per pair of rows
            fit["fit_diag"] = int(g.consts[scopes[-1] + "/matrix"].shape[1]) == m != 1
    model["descriptor"] = members[0] if len(members) == 1 else {"type": "hybrid",
                                                                "list": members}
    model["fitting_net"] = fit
    return model
