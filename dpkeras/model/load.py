"""Load a model from any format dpkeras speaks, as an ``EnergyModel`` (or a ``TensorModel``
for DeePMD-kit ``dipole``/``polar`` graphs).

Accepted: a dpkeras SavedModel directory (``python -m dpkeras.freeze``), a ``.keras`` file, a
DeePMD-kit ``.dp`` file, a DeePMD-kit TensorFlow frozen graph ``.pb``, or a training run /
checkpoint directory.
"""

import json
import os

from dpkeras.errors import DPKerasError


def load_model(path, head=None):
    """Return ``(model, kind)`` with ``kind`` one of ``savedmodel``, ``keras``, ``dp``, ``pb``,
    ``checkpoint``. ``head``: the head of a multi-task model (run directory or united
    SavedModel; needed when it has several), see :mod:`dpkeras.multitask.load`."""
    from dpkeras.model.weights import build_model, set_weights

    if not os.path.exists(path):
        raise DPKerasError(f"{path}: model not found")
    from dpkeras.multitask.load import DEFAULT_HEAD, load_multitask, pick_head

    multi = load_multitask(path)
    if multi is not None:
        return pick_head(multi[0], head, path), multi[1]
    if head not in (None, DEFAULT_HEAD):
        raise DPKerasError(f"{path}: a single-task model has no head {head!r} (its one "
                           f"branch is {DEFAULT_HEAD!r})")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return _load_savedmodel(path), "savedmodel"
        from dpkeras import checkpoint

        ckpt, meta = checkpoint.read_meta(path)
        model = build_model(meta["model"])
        checkpoint.restore(ckpt, model)
        return model, "checkpoint"
    if path.endswith(".pb"):
        from dpkeras.io.deepmd_pb import read_model

        cfg, weights = read_model(path)
        model = build_model(cfg)
        set_weights(model, weights, path)
        return model, "pb"
    if path.endswith(".dp"):
        from dpkeras.io.dpfile import read_dp

        cfg, weights = read_dp(path)
        model = build_model(cfg)
        set_weights(model, weights, path)
        return model, "dp"
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
    for dst, src in zip(model.weights, obj.model_weights):
        dst.assign(src)
    return model


def _load_savedmodel(path):
    from dpkeras.model.weights import build_model

    return read_savedmodel(path, build_model)
