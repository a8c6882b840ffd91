"""The one loader: any model file dpkeras speaks, read once, as the Keras model it holds.

Accepted: a dpkeras SavedModel directory (``python -m dpkeras.freeze``; a united one holds every
head of a multi-task model), a ``.keras`` file, a DeePMD-kit ``.dp`` file, a DeePMD-kit
TensorFlow frozen graph ``.pb`` of any release (a v2.2 ``--united-model`` graph holds several
heads), or a training run / checkpoint directory (single- or multi-task).

:func:`load` returns what the file holds: a single-task model (``EnergyModel`` /
``TensorModel``) or a :class:`dpkeras.multitask.MultiTaskModel`. :func:`load_heads` and
:func:`load_model` are views of it: every head by name (a single-task model is the one head
``Default``, DeePMD-kit's name), or one head. A DeePMD-kit file becomes a model section and its
variables (a ``.dp`` file through DeePMD-kit's versioned dict, which every kind reads itself:
:func:`dpkeras.model.build.deserialize`; a frozen graph through :mod:`dpkeras.io.deepmd_pb`),
and :func:`dpkeras.model.build.build` makes the Keras model. :func:`load_dict` gives the model
at any path as DeePMD-kit's versioned dict.

A united SavedModel is marked by the file ``dpkeras_multitask.json`` in its directory
(:func:`dpkeras.export.save_united`).
"""

import json
import os

from dpkeras.config import DEFAULT_HEAD, normalize, normalize_model
from dpkeras.errors import DPKerasError
from dpkeras.model.build import build, build_model, deserialize
from dpkeras.multitask.model import MultiTaskModel


def load(path):
    """``(model, kind)``: the model at ``path`` (single-task, or a ``MultiTaskModel``) and the
    format it was read from: ``savedmodel``, ``keras``, ``dp``, ``pb`` or ``checkpoint``."""
    if not os.path.exists(path):
        raise DPKerasError(f"{path}: model not found")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            from dpkeras.export import MULTITASK_MARKER

            multi = os.path.isfile(os.path.join(path, MULTITASK_MARKER))
            return read_savedmodel(path, MultiTaskModel if multi else build_model), "savedmodel"
        from dpkeras import checkpoint

        ckpt, meta = checkpoint.read_meta(path)
        section = meta["model"]
        model = MultiTaskModel(section) if section.get("model_dict") is not None \
            else build_model(section)
        checkpoint.restore(ckpt, model)
        return model, "checkpoint"
    if path.endswith(".pb"):
        return _read_graph(path), "pb"
    if path.endswith(".dp"):
        from dpkeras.io.dp import read_dp

        return deserialize(read_dp(path), path), "dp"
    if path.endswith(".keras"):
        import keras

        import dpkeras.model  # noqa: F401  (registers the serializable classes)

        try:
            return keras.saving.load_model(path), "keras"
        except Exception as exc:
            raise DPKerasError(f"{path}: cannot load the .keras file ({exc}); it is corrupt or "
                               "was not written by dpkeras") from None
    raise DPKerasError(f"{path}: unknown model format; expected a SavedModel directory, a run "
                       "directory, or a .keras / .dp / .pb file")


def load_dict(path, head=None):
    """DeePMD-kit's versioned model dict (``@class`` Model, what a ``.dp`` file holds) of the
    single-task model at ``path``, or of head ``head`` of a multi-task one, whatever the format
    (:func:`load_model`, then :meth:`~dpkeras.model.ener.DeepmdModel.serialize`). A kind
    DeePMD-kit cannot serialize is an error naming it."""
    model, _ = load_model(path, head)
    try:
        return model.serialize()
    except DPKerasError as exc:
        raise DPKerasError(f"{path}: {exc}") from None


def load_heads(path):
    """``({head: model}, kind)``: every head of the model at ``path`` (``{"Default": model}``
    for a single-task one)."""
    model, kind = load(path)
    return heads_of(model), kind


def load_model(path, head=None):
    """``(model, kind)``: the single-task model at ``path``, or head ``head`` of a multi-task
    one (``None``: its only head; an error naming the heads when it has several)."""
    model, kind = load(path)
    return pick_head(model, head, path), kind


def heads_of(model):
    """``{head: model}`` of a multi-task model, or ``{"Default": model}``."""
    if isinstance(model, MultiTaskModel):
        return dict(model.heads)
    return {DEFAULT_HEAD: model}


def pick_head(model, head, path):
    """Head ``head`` of ``model`` (``None``: the only head, else an error)."""
    heads = heads_of(model)
    names = list(heads)
    if head is None:
        if len(names) == 1:
            return heads[names[0]]
        raise DPKerasError(f"{path}: a multi-task model with heads {names}; choose one "
                           "(--head NAME, DeepPot(path, head=NAME))")
    if head not in heads:
        what = "a single-task model has no head" if not isinstance(model, MultiTaskModel) \
            else "no head"
        raise DPKerasError(f"{path}: {what} {head!r}; the model's heads are {names}")
    return heads[head]


def read_savedmodel(path, build):
    """The model of a dpkeras SavedModel directory: ``build(model_section)`` makes the Keras
    model (single- or multi-task) and the stored weights are assigned to it in order."""
    import tensorflow as tf

    try:
        obj = tf.saved_model.load(path)
        config = json.loads(obj.model_config_json.numpy().decode())
    except Exception as exc:
        raise DPKerasError(f"{path}: not a readable dpkeras SavedModel ({exc})") from None
    model = build(config["model"])
    if len(obj.model_weights) != len(model.weights):
        raise DPKerasError(f"{path}: {len(obj.model_weights)} weights stored but the model has "
                           f"{len(model.weights)}; the SavedModel is inconsistent")
    from dpkeras.tabulate import coefficients_by_power

    for dst, src in zip(model.weights, obj.model_weights):
        if tuple(dst.shape) != tuple(src.shape):
            # a compressed model written before the tables were stored by power
            src = coefficients_by_power(dst, src.numpy())
            if src is None:
                raise DPKerasError(f"{path}: weight {dst.path} has shape {tuple(dst.shape)} "
                                   f"in the model but is stored with another; the SavedModel "
                                   "is inconsistent")
        dst.assign(src)
    return model


def _read_graph(path):
    """A DeePMD-kit frozen graph: a single-task model, or (a v2.2 ``dp freeze --united-model``
    graph) a ``MultiTaskModel`` whose heads share the descriptor (layers shared by
    ``layer_name`` become one layer)."""
    from dpkeras.io.deepmd_pb import read_graph
    from dpkeras.network import compute_precision

    single, heads, low = read_graph(path)
    with compute_precision(low):   # a mixed-precision graph: hidden layers in compute_prec
        if heads is None:
            return build(*single, path)
        model = MultiTaskModel({"model_dict": {h: normalize_model(cfg)
                                               for h, (cfg, _) in heads.items()}})
    for h, (_, weights) in heads.items():
        model.heads[h].set_variables(weights, f"{path} (head {h})")
    return model


def load_input_from_frozen(path, frozen):
    """``--init_frz_model FROZEN``: read ``input.json`` at ``path``, complete it from the
    multi-task model ``frozen`` (:func:`dpkeras.config.complete_from_frozen`) and normalize
    it."""
    from dpkeras.config import complete_from_frozen, read_input

    model, _ = load(frozen)
    if not isinstance(model, MultiTaskModel):
        raise DPKerasError(f"{frozen}: --init_frz_model needs a multi-task model (a united "
                           "SavedModel or a multi-task run directory); use --init_model for "
                           "a single-task one")
    raw = read_input(path)
    try:
        return normalize(complete_from_frozen(raw, model.config))
    except DPKerasError as exc:
        raise DPKerasError(str(exc).replace("input.json:", f"{path}:", 1)) from None
