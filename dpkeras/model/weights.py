"""Move weights between an ``EnergyModel`` and a plain dict of numpy arrays.

The dict is the common currency of every foreign format reader/writer (DeePMD-kit ``.pb`` and
``.dp``) and of ``--init_model``::

    {"davg": [ntypes, nnei, 4], "dstd": [ntypes, nnei, 4],
     "embeddings": {(ti, tj) or (tj,): {"w": [...], "b": [...], "idt": [... or None]}},
     "fitting": [{"w", "b", "idt", "w_out", "b_out"} per type],
     "bias_atom_e": [ntypes]}

``se_atten`` adds ``"type_embedding": {"w", "b", "idt"}`` and ``"attention": [{"wq", "bq", "wk",
"bk", "wv", "bv", "wo", "bo", "gamma", "beta"} per layer]``; its one embedding net is keyed
``()`` and its ``fitting`` list holds the single net shared by all types. A type-embedded
``se_e2_a`` (model ``type_embedding`` section) has ``"type_embedding"`` and one embedding net
``()`` too; so do the members of a ``hybrid`` with an attention member (each carries the shared
type embedding) and the fitting is one net. In strip mode
(``se_atten_v2``) it also has ``"embedding_strip": {"w", "b", "idt"}``, the net of the type
embedding pairs. A ``hybrid`` descriptor stores ``"hybrid": [descriptor dict per
sub-descriptor]`` (each with the descriptor keys above) instead of the descriptor keys.

A ``TensorModel`` (``dipole``/``polar``) has no ``bias_atom_e``; its ``fitting`` list holds one
net per type of ``sel_type`` (in that order) and a ``polar`` fitting adds
``"constant_matrix": [ntypes]``.
"""

import numpy as np

from dpkeras.config import model_kwargs, normalize_model
from dpkeras.errors import DPKerasError
from dpkeras.fitting import TENSOR_FITTINGS
from dpkeras.model.ener import EnergyModel
from dpkeras.model.tensor import TensorModel


def build_model(model_section):
    """An ``EnergyModel`` or (``dipole``/``polar`` fitting) a ``TensorModel`` from a (not
    necessarily normalized) ``model`` section."""
    kwargs = model_kwargs(normalize_model(model_section))
    if kwargs["fitting_net"]["type"] in TENSOR_FITTINGS:
        return TensorModel(**kwargs)
    return EnergyModel(**kwargs)


def check_finite(model, source):
    """Refuse a model whose weights hold NaN or inf (a diverged training): naming the first
    such weight. ``model``: any model with ``weights`` (multi-task too)."""
    for v in model.weights:
        x = v.numpy()
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            raise DPKerasError(f"{source}: weight {v.path} holds NaN or inf values (the training "
                               "diverged); use an earlier checkpoint or retrain with a smaller "
                               "learning_rate.start_lr")


def _embedding_nets(d):
    if d.mixed_types():
        return {(): d.embedding_net}
    return d.embeddings


def get_weights(model):
    out = {"fitting": [net.get_numpy() for net in model.fitting.nets]}
    out.update(_fitting_extras(model.fitting))
    d = model.descriptor
    if d.descriptor_type == "hybrid":
        out["hybrid"] = [_get_descriptor(sub) for sub in d.descriptors]
    else:
        out.update(_get_descriptor(d))
    return out


def _get_descriptor(d):
    out = {"davg": d.env_mat.davg.numpy(), "dstd": d.env_mat.dstd.numpy(),
           "embeddings": {k: net.get_numpy() for k, net in _embedding_nets(d).items()}}
    if getattr(d, "type_embed", None) is not None:
        out["type_embedding"] = d.type_embed.get_numpy()
    if d.mixed_types():
        out["attention"] = [layer.get_numpy() for layer in d.attention_layers]
        if d.embedding_strip is not None:
            out["embedding_strip"] = d.embedding_strip.get_numpy()
    return out


def set_weights(model, weights, source="the source model"):
    d = model.descriptor
    if d.descriptor_type == "hybrid":
        subs = weights.get("hybrid")
        if subs is None or len(subs) != len(d.descriptors):
            raise DPKerasError(f"{source}: {len(subs or [])} hybrid sub-descriptors, the model "
                               f"has {len(d.descriptors)}")
        for sub, w in zip(d.descriptors, subs):
            _set_descriptor(sub, w, source)
    elif "hybrid" in weights:
        raise DPKerasError(f"{source}: a hybrid descriptor, the model has {d.descriptor_type}")
    else:
        _set_descriptor(d, weights, source)
    if len(weights["fitting"]) != len(model.fitting.nets):
        raise DPKerasError(f"{source}: {len(weights['fitting'])} fitting nets, the model has "
                           f"{len(model.fitting.nets)}")
    for net, w in zip(model.fitting.nets, weights["fitting"]):
        net.set_numpy(w)
    for key, value in _fitting_extras(model.fitting).items():
        if key not in weights:
            raise DPKerasError(f"{source}: no {key} for the {model.fitting.fitting_type} "
                               "fitting (the source is a model of another kind)")
        w = np.asarray(weights[key], np.float64)
        if w.shape != value.shape:
            raise DPKerasError(f"{source}: {key} has shape {w.shape}, the model expects "
                               f"{value.shape} (numb_fparam/numb_aparam or type_map differ)")
        getattr(model.fitting, key).assign(w)


def _fitting_extras(fitting):
    """The fitting's non-network weights: ``bias_atom_e`` (ener; plus the fparam/aparam
    statistics when it has them), ``constant_matrix`` (polar)."""
    names = [n for n in ("bias_atom_e", "constant_matrix", "fparam_avg", "fparam_inv_std",
                         "aparam_avg", "aparam_inv_std") if getattr(fitting, n, None) is not None]
    return {n: getattr(fitting, n).numpy() for n in names}


def _set_descriptor(d, weights, source):
    nets = _embedding_nets(d)
    if set(weights["embeddings"]) != set(nets):
        raise DPKerasError(f"{source}: embedding nets {sorted(weights['embeddings'])} do not "
                           f"match the model's {sorted(nets)} (descriptor type / type_one_side / "
                           "exclude_types / type_map differ)")
    if d.mixed_types():
        if "attention" not in weights or len(weights["attention"]) != len(d.attention_layers):
            raise DPKerasError(f"{source}: {len(weights.get('attention', []))} attention layers, "
                               f"the model has {len(d.attention_layers)}")
        if (d.embedding_strip is None) != ("embedding_strip" not in weights):
            raise DPKerasError(f"{source}: tebd_input_mode differs from the model's "
                               f"{d.tebd_input_mode!r} (strip-mode type-pair net present in "
                               "only one of them)")
    if weights["davg"].shape != tuple(d.env_mat.davg.shape):
        raise DPKerasError(f"{source}: descriptor statistics have shape "
                           f"{weights['davg'].shape}, the model expects "
                           f"{tuple(d.env_mat.davg.shape)} (sel or type_map differ)")
    d.env_mat.set_stats(weights["davg"], weights["dstd"])
    for k, net in nets.items():
        net.set_numpy(weights["embeddings"][k])
    if getattr(d, "type_embed", None) is not None:
        if "type_embedding" not in weights:
            raise DPKerasError(f"{source}: no type embedding, the model's {d.descriptor_type} "
                               "descriptor has one (model.type_embedding differs)")
        d.type_embed.set_numpy(weights["type_embedding"])
    elif "type_embedding" in weights:
        raise DPKerasError(f"{source}: a type-embedded {d.descriptor_type} descriptor, the "
                           "model has none (add the source's model.type_embedding section)")
    if d.mixed_types():
        for layer, w in zip(d.attention_layers, weights["attention"]):
            layer.set_numpy(w)
        if d.embedding_strip is not None:
            d.embedding_strip.set_numpy(weights["embedding_strip"])
