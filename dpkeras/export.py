"""Write a model as a SavedModel directory, a ``.keras`` file or a DeePMD-kit ``.dp`` file.

The SavedModel serves ``serving_default(coord [nf, nat, 3], atype [nf, nat], box [nf, 3, 3])``
-> ``energy``, ``force``, ``virial``, ``atom_energy``, ``atom_virial`` (a box of zeros means no
PBC) and carries its metadata as attributes readable with ``tf.saved_model.load`` alone:
``type_map`` (strings), ``rcut``, ``sel``, ``dpkeras_version`` and ``model_config_json``.
"""

import json

import tensorflow as tf

from dpkeras import __version__
from dpkeras.atomic import atomic_dir, atomic_file
from dpkeras.serving import make_serving_fn


def save_savedmodel(model, path):
    """Export ``model`` as a self-contained SavedModel directory (written atomically)."""
    module = tf.Module()
    module.model = model
    module.model_weights = list(model.weights)
    module.serve = make_serving_fn(model)
    module.type_map = tf.Variable(model.get_type_map(), trainable=False)
    module.rcut = tf.Variable(model.get_rcut(), dtype=tf.float64, trainable=False)
    module.sel = tf.Variable(model.get_sel(), dtype=tf.int32, trainable=False)
    module.dpkeras_version = tf.Variable(__version__, trainable=False)
    module.model_config_json = tf.Variable(json.dumps({"model": model.get_config_deepmd()}),
                                           trainable=False)
    with atomic_dir(path) as tmp:
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})


def save_model(model, path):
    """Dispatch on the output name: ``*.dp``, ``*.keras``, else a SavedModel directory."""
    if path.endswith(".dp"):
        from dpkeras.io.dpfile import write_dp

        write_dp(model, path)
    elif path.endswith(".keras"):
        with atomic_file(path, suffix=".keras") as tmp:
            model.save(tmp)
    else:
        save_savedmodel(model, path)
