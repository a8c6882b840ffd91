"""Read and write multi-task models: training runs/checkpoints and united SavedModels.

A united SavedModel (``python -m dpkeras.freeze --united_model``) holds every head: the
signatures ``HEAD_serving_default(coord, atype, box)`` and ``HEAD_serving_nopbc(coord, atype)``
per head (``serving_default``/``serving_nopbc``: the first head), the metadata of a single-task
SavedModel (``heads`` lists the head names) and ``model_config_json`` with the multi-task model
section, so dpkeras rebuilds it as a :class:`dpkeras.multitask.MultiTaskModel`; the file
``dpkeras_multitask.json`` in the directory marks it as united.
"""

import json
import os

from dpkeras.errors import DPKerasError
from dpkeras.multitask.model import MultiTaskModel

DEFAULT_HEAD = "Default"   # the one branch of a single-task model (DeePMD-kit's name)
MARKER = "dpkeras_multitask.json"   # in a united SavedModel: {"heads": [...]}


def load_multitask(path):
    """``(MultiTaskModel, kind)`` for a multi-task run / checkpoint directory or united
    SavedModel, else ``None`` (any other model, or a file)."""
    if os.path.isfile(path) and path.endswith(".pb"):
        return _load_united_graph(path)
    if not os.path.isdir(path):
        return None
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        if not os.path.isfile(os.path.join(path, MARKER)):
            return None
        from dpkeras.model.load import read_savedmodel

        return read_savedmodel(path, MultiTaskModel), "savedmodel"
    from dpkeras import checkpoint

    try:
        ckpt, meta = checkpoint.read_meta(path)
    except DPKerasError:
        return None
    if meta["model"].get("model_dict") is None:
        return None
    model = MultiTaskModel(meta["model"])
    checkpoint.restore(ckpt, model)
    return model, "checkpoint"


def _load_united_graph(path):
    """A DeePMD-kit 2.2 ``dp freeze --united-model`` graph as a ``MultiTaskModel`` (its heads
    share the descriptor; layers shared by ``layer_name`` become one layer), or ``None``."""
    from dpkeras.config import normalize_model
    from dpkeras.io.deepmd_pb import read_united
    from dpkeras.model.weights import set_weights

    heads = read_united(path)
    if heads is None:
        return None
    model = MultiTaskModel({"model_dict": {h: normalize_model(cfg)
                                           for h, (cfg, _) in heads.items()}})
    for h, (_, weights) in heads.items():
        set_weights(model.heads[h], weights, f"{path} (head {h})")
    return model, "pb"


def pick_head(model, head, path):
    """The head ``head`` of a multi-task model (``None``: the only head, else an error)."""
    names = model.head_names()
    if head is None:
        if len(names) == 1:
            return model.heads[names[0]]
        raise DPKerasError(f"{path}: a multi-task model with heads {names}; choose one "
                           "(--head NAME, DeepPot(path, head=NAME))")
    if head not in model.heads:
        raise DPKerasError(f"{path}: no head {head!r}; the model's heads are {names}")
    return model.heads[head]


def load_multitask_or_model(path):
    """A ``MultiTaskModel``, or the single-task model at ``path`` (any format)."""
    from dpkeras.model.load import load_model

    mt = load_multitask(path)
    return mt[0] if mt is not None else load_model(path)[0]


def load_heads(path):
    """``({head: model}, kind)``: every head of a multi-task model, or ``{"Default": model}``."""
    from dpkeras.model.load import load_model

    mt = load_multitask(path)
    if mt is not None:
        return dict(mt[0].heads), mt[1]
    model, kind = load_model(path)
    return {DEFAULT_HEAD: model}, kind


def single_head_model(model, head):
    """A stand-alone single-task copy of head ``head`` (its own descriptor), for freezing."""
    from dpkeras.model.weights import build_model, get_weights, set_weights

    src = model.head(head)
    out = build_model(src.get_config_deepmd())
    set_weights(out, get_weights(src), f"head {head}")
    return out


def save_united(model, path):
    """Write every head of ``model`` into one SavedModel directory (atomically)."""
    import tensorflow as tf

    from dpkeras import __version__
    from dpkeras.atomic import atomic_dir
    from dpkeras.serving import make_signatures

    module = tf.Module()
    module.model_weights = [w.value for w in model.weights]
    signatures = {}
    for i, (name, head) in enumerate(model.heads.items()):
        sig = make_signatures(head)
        signatures[f"{name}_serving_default"] = sig["serving_default"]
        signatures[f"{name}_serving_nopbc"] = sig["serving_nopbc"]
        if i == 0:
            signatures.update(sig)
    module.type_map = tf.Variable(model.get_type_map(), trainable=False)
    module.rcut = tf.Variable(model.get_rcut(), dtype=tf.float64, trainable=False)
    module.sel = tf.Variable(model.get_sel(), dtype=tf.int32, trainable=False)
    module.heads = tf.Variable(model.head_names(), trainable=False)
    first = next(iter(model.config["model_dict"].values()))
    module.descriptor = tf.Variable(str(first["descriptor"]["type"]), trainable=False)
    module.dpkeras_version = tf.Variable(__version__, trainable=False)
    module.model_config_json = tf.Variable(json.dumps({"model": model.config}),
                                           trainable=False)
    with atomic_dir(path) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        with open(os.path.join(tmp, MARKER), "w") as f:
            json.dump({"heads": model.head_names()}, f)
