"""DeePMD-kit's type embedding (the model's ``type_embedding`` section): one vector per atom type.

Used by the attention descriptors (``se_atten``, ``se_atten_v2``), by ``se_e2_a`` when the model
has a ``type_embedding`` section (DeePMD-kit's ``se_e2_a_tebd``), and shared by all members of a
``hybrid`` that contains an attention descriptor. The fitting net of such a model is one net for
all types fed ``[D_i, e_{t_i}]``.
"""

import keras
import tensorflow as tf

from dpkeras.errors import DPKerasError
from dpkeras.network import EmbeddingNet, activation_name, embedding_net_dict, net_dtype, \
    net_variables


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

    def serialize(self, type_map=None):
        """DeePMD-kit's ``TypeEmbedNet`` dict (``@version`` 2, with the padding row)."""
        net = embedding_net_dict(self.get_numpy(), self.neuron, self.activation_function,
                                 self.resnet_dt, self.ntypes)
        return {"@class": "TypeEmbedNet", "@version": 2, "ntypes": self.ntypes,
                "neuron": list(self.neuron), "resnet_dt": self.resnet_dt,
                "precision": self.variable_dtype,
                "activation_function": self.activation_function, "trainable": self.trainable,
                "padding": True, "use_econf_tebd": False, "use_tebd_bias": self.use_tebd_bias,
                "type_map": type_map, "embedding": net}

    @staticmethod
    def from_serialized(data, ntypes, use_tebd_bias, where):
        """``(type_embedding section, net arrays)`` of a ``TypeEmbedNet`` dict
        (``use_tebd_bias``: the descriptor's, when the dict has none)."""
        if data.get("padding") is False:
            raise DPKerasError(f"{where}: a type embedding without the padding row is not "
                               "supported")
        net = data["embedding"]
        if int(net["in_dim"]) != ntypes:
            raise DPKerasError(f"{where}: type embedding input width {net['in_dim']} is not "
                               f"ntypes = {ntypes}")
        section = {"neuron": list(data["neuron"]),
                   "activation_function": activation_name(data.get("activation_function")),
                   "resnet_dt": bool(data.get("resnet_dt", False)),
                   "use_tebd_bias": bool(data.get("use_tebd_bias", use_tebd_bias)),
                   "trainable": bool(data.get("trainable", True))}
        if data.get("precision") == "float32":
            section["precision"] = "float32"
        return section, net_variables(net, where, "embedding")

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, neuron=self.neuron,
                   activation_function=self.activation_function, resnet_dt=self.resnet_dt,
                   use_tebd_bias=self.use_tebd_bias, seed=self.seed)
        return cfg
