"""Write a model as a SavedModel directory, a ``.keras`` file or a DeePMD-kit ``.dp`` file.

The SavedModel serves ``serving_default(coord [nf, nat, 3], atype [nat] or [nf, nat],
box [nf, 3, 3])`` and ``serving_nopbc(coord, atype)`` -> ``energy``, ``force``, ``virial``,
``atom_energy``, ``atom_virial`` (see :func:`dpkeras.serving.make_signatures`; a box of zeros
means no PBC) and carries its metadata as attributes readable with ``tf.saved_model.load``
alone: ``type_map`` (strings), ``rcut``, ``sel``, ``heads`` (strings; ``["Default"]``),
``descriptor`` (its type), ``dpkeras_version`` and ``model_config_json``.

A united SavedModel (:func:`save_united`, ``python -m dpkeras.freeze --united_model``) holds
every head of a multi-task model: the signatures ``HEAD_serving_default(coord, atype, box)`` and
``HEAD_serving_nopbc(coord, atype)`` per head (``serving_default``/``serving_nopbc``: the first
head), the same metadata (``heads`` lists the head names, ``model_config_json`` the multi-task
model section) and the file :data:`MULTITASK_MARKER` that marks it as united.
"""

import json
import os

import tensorflow as tf

from dpkeras import __version__
from dpkeras.atomic import atomic_dir, atomic_file
from dpkeras.config import DEFAULT_HEAD
from dpkeras.serving import make_signatures

MULTITASK_MARKER = "dpkeras_multitask.json"   # in a united SavedModel: {"heads": [...]}


def save_savedmodel(model, path):
    """Export ``model`` as a self-contained SavedModel directory (written atomically)."""
    module = tf.Module()
    # the plain tf.Variables under the Keras variables: tracked directly, they are restored by
    # TF1-style loaders too (saved_model_cli run, TF Serving), not only by tf.saved_model.load
    module.model_weights = [w.value for w in model.weights]
    signatures = make_signatures(model)
    module.serve = signatures["serving_default"]
    module.serve_nopbc = signatures["serving_nopbc"]
    module.type_map = tf.Variable(model.get_type_map(), trainable=False)
    module.rcut = tf.Variable(model.get_rcut(), dtype=tf.float64, trainable=False)
    module.sel = tf.Variable(model.get_sel(), dtype=tf.int32, trainable=False)
    module.heads = tf.Variable([DEFAULT_HEAD], trainable=False)
    config = model.get_config_deepmd()
    module.descriptor = tf.Variable(str(config.get("descriptor", {}).get("type", "")),
                                    trainable=False)
    module.dpkeras_version = tf.Variable(__version__, trainable=False)
    module.model_config_json = tf.Variable(json.dumps({"model": config}),
                                           trainable=False)
    with atomic_dir(path) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)


def save_model(model, path):
    """Dispatch on the output name: ``*.dp``, ``*.keras``, else a SavedModel directory."""
    if path.endswith(".dp"):
        from dpkeras.io.dp import write_dp

        write_dp(model, path)
    elif path.endswith(".keras"):
        with atomic_file(path, suffix=".keras") as tmp:
            model.save(tmp)
    else:
        save_savedmodel(model, path)


def save_united(model, path):
    """Write every head of ``model`` into one SavedModel directory (atomically)."""
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
        with open(os.path.join(tmp, MULTITASK_MARKER), "w") as f:
            json.dump({"heads": model.head_names()}, f)
