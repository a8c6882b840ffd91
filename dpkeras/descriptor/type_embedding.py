"""DeePMD-kit's type embedding (the model's ``type_embedding`` section): one vector per atom type.

Used by the attention descriptors (``se_atten``, ``se_atten_v2``), by ``se_e2_a`` when the model
has a ``type_embedding`` section (DeePMD-kit's ``se_e2_a_tebd``), and shared by all members of a
``hybrid`` that contains an attention descriptor. The fitting net of such a model is one net for
all types fed ``[D_i, e_{t_i}]``.
"""

import keras
import tensorflow as tf

from dpkeras.network import EmbeddingNet, net_dtype


def type_embedding_config(section, seed=None):
    """The ``type_embedding`` section with DeePMD-kit's defaults filled (``neuron [8]``, linear,
    no bias); ``precision`` is kept only when it is not float64."""
    te = dict(section or {})
    cfg = {
        "neuron": list(te.get("neuron", [8])),
        "activation_function": te.get("activation_function", "linear"),
        "resnet_dt": bool(te.get("resnet_dt", False)),
        "use_tebd_bias": bool(te.get("use_tebd_bias", False)),
        "seed": te.get("seed", seed),
    }
    if te.get("precision", "float64") != "float64":
        cfg["precision"] = te["precision"]
    return cfg


@keras.saving.register_keras_serializable(package="dpkeras")
class TypeEmbedding(keras.layers.Layer):
    """DeePMD-kit ``TypeEmbedNet``: an embedding net on one-hot types, plus a zero padding row.

    :meth:`table` returns ``[ntypes + 1, neuron[-1]]``.
    """

    def __init__(self, ntypes, neuron=(8,), activation_function="linear", resnet_dt=False,
                 use_tebd_bias=False, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.ntypes = int(ntypes)
        self.neuron = [int(n) for n in neuron]
        self.activation_function = activation_function
        self.resnet_dt = bool(resnet_dt)
        self.use_tebd_bias = bool(use_tebd_bias)
        self.seed = seed
        self.net = EmbeddingNet(self.ntypes, self.neuron, activation_function=activation_function,
                                resnet_dt=resnet_dt, use_bias=use_tebd_bias, seed=seed,
                                dtype=self.variable_dtype, name="type_embed_net")
        self.built = True

    @classmethod
    def from_section(cls, ntypes, config, **kwargs):
        """The layer of a config made by :func:`type_embedding_config`."""
        args = {k: v for k, v in config.items() if k != "precision"}
        return cls(ntypes, dtype=net_dtype(config.get("precision")), **args, **kwargs)

    def dim(self):
        return self.neuron[-1]

    def table(self):
        """``[ntypes + 1, neuron[-1]]``: the embedding of every type, then the zero padding row."""
        x = self.net(tf.eye(self.ntypes, dtype=self.compute_dtype))
        return tf.concat([x, tf.zeros([1, self.neuron[-1]], x.dtype)], axis=0)

    def atom_embedding(self, atype):
        """``[nf, nloc, T]`` float64: the embedding of each atom (the fitting's extra input)."""
        return tf.cast(tf.gather(self.table(), atype), tf.float64)

    def get_numpy(self):
        return self.net.get_numpy()

    def set_numpy(self, weights):
        self.net.set_numpy(weights)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, neuron=self.neuron,
                   activation_function=self.activation_function, resnet_dt=self.resnet_dt,
                   use_tebd_bias=self.use_tebd_bias, seed=self.seed)
        return cfg
