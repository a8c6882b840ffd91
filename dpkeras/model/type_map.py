"""Changing the type_map of a model: every per-type weight selected/reordered by element name.

DeePMD-kit's ``change_type_map``: the downstream ``type_map`` may list the model's elements in
any order and, for type-embedding descriptors (se_atten, se_atten_v2), any subset of them.
Per-type-network descriptors (se_e2_a, se_e2_r, se_e3) keep all their elements, since their
normalization depends on the total neighbor count ``sum(sel)``. The remapped model gives exactly
the original numbers on the same atoms. :meth:`dpkeras.model.ener.DeepmdModel.change_type_map`
is the one call; the functions below work on a normalized model section and the variables dict
(:meth:`~dpkeras.model.ener.DeepmdModel.get_variables`).
"""

import copy

import numpy as np

from dpkeras.config import ATTENTION_DESCRIPTORS, normalize_model
from dpkeras.errors import DPKerasError

# descriptors whose per-type parameters are rows of a type embedding (any subset of types works)
MIXED_TYPE_DESCRIPTORS = ATTENTION_DESCRIPTORS
# per-type-network descriptors: types may be reordered but not dropped, since their
# normalization depends on the total neighbor count sum(sel)
PER_TYPE_DESCRIPTORS = ("se_e2_a", "se_e2_r", "se_e3")
# variables of the descriptor that do not depend on the types
TYPE_FREE_KEYS = ("attention", "embedding_strip")

def type_index(pretrained_map, new_map, source):
    """``idx[i]`` = index in ``pretrained_map`` of element ``new_map[i]``; an element the
    pretrained model does not know is an error naming it."""
    missing = [e for e in new_map if e not in pretrained_map]
    if missing:
        raise DPKerasError(f"model.type_map: element(s) {missing} are not in the type_map of "
                           f"the pretrained model {source} {list(pretrained_map)}; a fine-tuned "
                           "model can only use elements it was pretrained on")
    return [list(pretrained_map).index(e) for e in new_map]


def _check_remappable(kind, idx, nold, source, members=()):
    if idx == list(range(nold)):
        return False  # identity: nothing to do, for any model kind
    if kind in MIXED_TYPE_DESCRIPTORS:
        return True
    if kind in PER_TYPE_DESCRIPTORS or (kind == "hybrid" and members and all(
            m["type"] in PER_TYPE_DESCRIPTORS for m in members)):
        if len(idx) != nold:
            raise DPKerasError(
                f"model.type_map: a {kind} model has one network per element and normalizes by "
                f"the total neighbor count, so elements cannot be dropped from {source}; list all "
                f"{nold} pretrained elements (in any order) in model.type_map")
        return True
    raise DPKerasError(f"model.type_map: changing the type_map of a {kind!r} model is not "
                       f"supported yet; use the pretrained type_map of {source} unchanged")


def _remap_pairs(pairs, idx):
    new = {old: i for i, old in enumerate(idx)}
    return sorted([sorted([new[a], new[b]]) for a, b in pairs if a in new and b in new])


def _members(d):
    return d.get("list", []) if d["type"] == "hybrid" else [d]


def _new_sel_type(fit, idx):
    """``(new sel_type, old positions)``: the selected types in the new indexing, sorted, and
    where each was in the old ``sel_type`` (``None``: a tensor fitting has none)."""
    if fit.get("sel_type") is None or fit["type"] == "ener":
        return None, None
    new = {old: i for i, old in enumerate(idx)}
    old_sel = sorted(fit["sel_type"])
    pairs = sorted((new[t], k) for k, t in enumerate(old_sel) if t in new)
    return [t for t, _ in pairs], [k for _, k in pairs]


def remap_section(section, idx, new_map, source="the pretrained model"):
    """The normalized model ``section`` with its type-dependent keys (``type_map``, per-type
    ``sel``, ``exclude_types``, a tensor fitting's ``sel_type`` and per-type ``scale``)
    rewritten for the types ``idx`` (see :func:`type_index`)."""
    out = copy.deepcopy(section)
    d = out["descriptor"]
    if _check_remappable(d["type"], idx, len(section["type_map"]), source, d.get("list", [])):
        for m in _members(d):
            if isinstance(m.get("sel"), list) and m["type"] not in MIXED_TYPE_DESCRIPTORS:
                m["sel"] = [m["sel"][i] for i in idx]
            if m.get("exclude_types"):
                m["exclude_types"] = _remap_pairs(m["exclude_types"], idx)
        fit = out["fitting_net"]
        sel_type, pos = _new_sel_type(fit, idx)
        if sel_type is not None:
            fit["sel_type"] = sel_type
            if isinstance(fit.get("scale"), list):
                fit["scale"] = [fit["scale"][k] for k in pos] + [1.0] * (len(idx) - len(pos))
    out["type_map"] = list(new_map)
    return out


def _remap_per_type(w, d, idx, kind):
    """The statistics and embedding nets of a per-type descriptor (or hybrid member)."""
    bounds = np.cumsum([0] + list(d["sel"]))
    slots = np.concatenate([np.arange(bounds[j], bounds[j + 1]) for j in idx])
    out = dict(w)
    out["davg"] = np.asarray(w["davg"])[idx][:, slots]
    out["dstd"] = np.asarray(w["dstd"])[idx][:, slots]
    new = {old: i for i, old in enumerate(idx)}
    emb = {}
    for key, net in w["embeddings"].items():
        if all(k in new for k in key):
            nk = tuple(new[k] for k in key)
            emb[tuple(sorted(nk)) if kind == "se_e3" else nk] = net
    out["embeddings"] = emb
    return out


def remap_variables(weights, section, idx, source="the pretrained model"):
    """Select/reorder every per-type array of a variables dict for the types ``idx``.

    ``section``: the normalized model section the weights belong to. Knows ``davg``/``dstd``
    (center types on axis 0; per-type descriptors also have neighbor-type slot groups on axis
    1), ``embeddings`` (keys of type indices), ``hybrid`` (per-type members), ``fitting`` (one
    net per type, or per type of a tensor fitting's ``sel_type``, unless shared),
    ``bias_atom_e``, ``constant_matrix`` and ``type_embedding`` (first-layer rows = one-hot
    input types). Any other key of a model whose types change is an error, never silently
    wrong numbers.
    """
    d = section["descriptor"]
    kind, nold = d["type"], len(section["type_map"])
    if not _check_remappable(kind, idx, nold, source, d.get("list", [])):
        return weights
    known = {"davg", "dstd", "embeddings", "fitting", "bias_atom_e", "constant_matrix",
             "hybrid"}
    if kind in MIXED_TYPE_DESCRIPTORS:
        known |= {"type_embedding", *TYPE_FREE_KEYS}
    unknown = sorted(set(weights) - known)
    if unknown:
        raise DPKerasError(f"{source}: cannot change the type_map of this {kind} model: its "
                           f"weights {unknown} are not known to the type_map remapping; use the "
                           "pretrained type_map unchanged")
    out = dict(weights)
    if "bias_atom_e" in weights:
        out["bias_atom_e"] = np.asarray(weights["bias_atom_e"])[idx]
    if kind in MIXED_TYPE_DESCRIPTORS:
        out["davg"] = np.asarray(weights["davg"])[idx]
        out["dstd"] = np.asarray(weights["dstd"])[idx]
        te_section = implicit_type_embedding(section)["type_embedding"]
        out["type_embedding"] = _remap_type_embedding(weights["type_embedding"], idx, nold,
                                                      te_section, source)
        return out   # one embedding net and one fitting net shared by all types
    if kind == "hybrid":
        out["hybrid"] = [_remap_per_type(w, m, idx, m["type"])
                         for w, m in zip(weights["hybrid"], d["list"])]
    else:
        per_type = _remap_per_type(weights, d, idx, kind)
        out.update({k: per_type[k] for k in ("davg", "dstd", "embeddings")})
    sel_type, pos = _new_sel_type(section["fitting_net"], idx)
    if sel_type is None:
        out["fitting"] = [weights["fitting"][i] for i in idx]
    else:
        out["fitting"] = [weights["fitting"][k] for k in pos]
        if "constant_matrix" in weights:   # indexed by the position in sel_type
            cm = np.zeros(len(idx))
            cm[:len(pos)] = np.asarray(weights["constant_matrix"])[pos]
            out["constant_matrix"] = cm
    return out


def _remap_type_embedding(te, idx, nold, te_section, source):
    """The type embedding net maps one-hot types, so the rows of its first-layer matrix are the
    types. When that layer has a skip connection (width = ntypes or 2 ntypes, DeePMD-kit's
    embedding-net rule), the one-hot input is added to its output; with a linear activation
    the whole layer is the affine map ``x @ A + c`` with ``A = W idt + [I, I]``, whose rows are
    remapped and then written back in the form the new width takes (DeePMD-kit's
    ``TypeEmbedNet.change_type_map`` does the same)."""
    w0 = np.asarray(te["w"][0])
    nnew, width = len(idx), w0.shape[1]

    def skip(n):
        return np.eye(n) if width == n else (np.tile(np.eye(n), (1, 2)) if width == 2 * n
                                             else np.zeros((n, width)))

    old_skip, new_skip = width in (nold, 2 * nold), width in (nnew, 2 * nnew)
    out = dict(te, w=list(te["w"]), b=list(te["b"]), idt=list(te.get("idt") or
                                                             [None] * len(te["w"])))
    if not old_skip and not new_skip:
        out["w"][0] = w0[idx]
        return out
    if str(te_section["activation_function"]).lower() not in ("linear", "none"):
        raise DPKerasError(f"{source}: the type embedding's first layer has a skip connection "
                           f"(width {width}) and a non-linear activation, so its types cannot be "
                           "remapped; use the pretrained type_map unchanged")
    idt = out["idt"][0]
    scale = np.ones(width) if idt is None else np.asarray(idt)
    a = w0 * scale + skip(nold)                     # [nold, width]: the folded first layer
    b = out["b"][0]
    out["w"][0] = a[idx] - skip(nnew)
    if b is not None:
        out["b"][0] = np.asarray(b) * scale
    has_new_idt = new_skip and te_section["resnet_dt"]
    out["idt"][0] = np.ones(width) if has_new_idt else None
    return out



def implicit_type_embedding(section):
    """A mixed-type section without ``type_embedding`` uses DeePMD-kit's default (linear
    activation); make it explicit so that sections compare by meaning."""
    if section["descriptor"]["type"] in MIXED_TYPE_DESCRIPTORS and \
            section.get("type_embedding") is None:
        return normalize_model(dict(section, type_embedding={"activation_function": "linear"}))
    return section
