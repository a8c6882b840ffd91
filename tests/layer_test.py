"""KerasHub-style layer tests: one helper that checks what every dpkeras layer promises.

:func:`run_layer_test` builds a layer at a tiny size and checks that (1) ``get_config`` round
trips through ``from_config`` (and through Keras' JSON serialization) to a layer with the same
config whose outputs, with the same weights, are equal; (2) a functional Keras model holding
the layer saves to ``.keras`` and loads back with equal outputs (every dpkeras layer is
registered for serialization); (3) the outputs are finite and have the expected shape.
"""

import json
import os

import keras
import numpy as np


def _numpy(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def _outputs(out):
    return [_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def run_layer_test(cls, init_kwargs, inputs, tmp_path, call_kwargs=None, expected_shape=None):
    """``inputs``: the positional inputs (numpy arrays with a batch axis first, or ``None``);
    ``call_kwargs``: fixed keyword arguments of ``call`` (not tensors)."""
    call_kwargs = call_kwargs or {}
    layer = cls(**init_kwargs)
    ref = _outputs(layer(*inputs, **call_kwargs))
    for r in ref:
        assert np.all(np.isfinite(r)), f"{cls.__name__}: non-finite output"
    if expected_shape is not None:
        assert ref[0].shape == tuple(expected_shape), (ref[0].shape, expected_shape)

    # 1. config round trip, directly and through Keras' JSON serialization
    cfg = layer.get_config()
    restored = [cls.from_config(cfg), keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(layer))))]
    for clone in restored:
        assert type(clone) is cls
        clone(*inputs, **call_kwargs)
        assert clone.get_config() == cfg, f"{cls.__name__}: get_config does not round trip"
        assert len(clone.weights) == len(layer.weights)
        clone.set_weights(layer.get_weights())
        for a, b in zip(_outputs(clone(*inputs, **call_kwargs)), ref):
            np.testing.assert_array_equal(a, b)

    # 2. .keras save / load inside a functional model
    symbolic = [None if x is None else keras.Input(shape=x.shape[1:], dtype=str(x.dtype),
                                                   batch_size=x.shape[0]) for x in inputs]
    given = [x for x in symbolic if x is not None]
    model = keras.Model(given, cls(**init_kwargs)(*symbolic, **call_kwargs))
    model.layers[-1].set_weights(layer.get_weights())
    path = os.path.join(str(tmp_path), f"{cls.__name__}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(_outputs(loaded([x for x in inputs if x is not None])), ref):
        np.testing.assert_array_equal(a, b)
    return layer, ref
