"""``ener`` fitting: per-type fitting nets mapping descriptors to atomic energies.

``E_i = F_{t_i}(D_i) + bias_atom_e[t_i]``; the frame energy is ``sum_i E_i``.
With a type-embedding descriptor (``tebd_dim > 0``, e.g. ``se_atten``) there is ONE net for all
types, fed ``[D_i, e_{t_i}]`` (DeePMD-kit's TF ``mixed_types`` fitting):
``E_i = F([D_i, e_{t_i}]) + bias_atom_e[t_i]``.
``bias_atom_e`` is a non-trainable per-type weight set from data (:func:`dpkeras.stat.compute_energy_bias`)
or taken from a pretrained model.
"""

import keras
import tensorflow as tf

from dpkeras.network import FittingNet, child_seed
from dpkeras.typesplit import TypeSplit


@keras.saving.register_keras_serializable(package="dpkeras")
class EnerFitting(keras.layers.Layer):
    """``call(descriptor [nf, nloc, dim_descrpt], atype [nf, nloc], type_counts=None)`` -> atomic
    energy ``[nf, nloc]``."""

    fitting_type = "ener"

    def __init__(self, ntypes, dim_descrpt, neuron=(120, 120, 120), resnet_dt=True,
                 activation_function="tanh", trainable=True, seed=None, precision="float64",
                 tebd_dim=0, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(trainable=trainable, **kwargs)
        self.ntypes, self.dim_descrpt = int(ntypes), int(dim_descrpt)
        self.neuron = [int(n) for n in neuron]
        self.resnet_dt = bool(resnet_dt)
        self.activation_function = activation_function
        self.seed = seed
        self.precision = precision
        self.tebd_dim = int(tebd_dim)
        if self.tebd_dim:
            self.nets = [FittingNet(self.dim_descrpt + self.tebd_dim, self.neuron, out_dim=1,
                                    out_bias=True, activation_function=activation_function,
                                    resnet_dt=resnet_dt, seed=child_seed(seed, 0),
                                    name="fitting_all")]
        else:
            self.nets = [FittingNet(self.dim_descrpt, self.neuron, out_dim=1, out_bias=True,
                                    activation_function=activation_function,
                                    resnet_dt=resnet_dt, seed=child_seed(seed, t),
                                    name=f"fitting_type_{t}")
                         for t in range(self.ntypes)]
        self.bias_atom_e = self.add_weight(name="bias_atom_e", shape=(self.ntypes,),
                                           initializer="zeros", trainable=False)
        self.built = True

    def get_dim_out(self):
        return 1

    def call(self, descriptor, atype, type_counts=None, type_embedding=None):
        """``type_embedding [nf, nloc, tebd_dim]``: required when ``tebd_dim > 0``."""
        if self.tebd_dim:
            x = tf.concat([descriptor, type_embedding], axis=-1)
            nf, nloc = tf.shape(atype)[0], tf.shape(atype)[1]
            out = tf.reshape(self.nets[0](tf.reshape(x, [-1, x.shape[-1]]))[:, 0], [nf, nloc])
            return out + tf.gather(self.bias_atom_e, atype)
        split = TypeSplit(atype, self.ntypes, type_counts)
        outs = [self.nets[t](d)[:, 0] for t, d in enumerate(split.split(descriptor))]
        return split.merge(outs) + tf.gather(self.bias_atom_e, atype)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, dim_descrpt=self.dim_descrpt, neuron=self.neuron,
                   resnet_dt=self.resnet_dt, activation_function=self.activation_function,
                   seed=self.seed, precision=self.precision, tebd_dim=self.tebd_dim)
        return cfg
