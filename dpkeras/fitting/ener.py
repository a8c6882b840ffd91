"""``ener`` fitting: per-type fitting nets mapping descriptors to atomic energies.

``E_i = F_{t_i}(D_i) + bias_atom_e[t_i]``; the frame energy is ``sum_i E_i``.
``bias_atom_e`` is a non-trainable per-type weight set from data (:func:`dpkeras.stat.compute_energy_bias`)
or taken from a pretrained model.
"""

import keras
import tensorflow as tf

from dpkeras.descriptor.se_e2_a import type_partition
from dpkeras.network import FittingNet, child_seed


@keras.saving.register_keras_serializable(package="dpkeras")
class EnerFitting(keras.layers.Layer):
    """``call(descriptor [nf, nloc, dim_descrpt], atype [nf, nloc])`` -> atomic energy ``[nf, nloc]``."""

    fitting_type = "ener"

    def __init__(self, ntypes, dim_descrpt, neuron=(120, 120, 120), resnet_dt=True,
                 activation_function="tanh", trainable=True, seed=None, precision="float64",
                 **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(trainable=trainable, **kwargs)
        self.ntypes, self.dim_descrpt = int(ntypes), int(dim_descrpt)
        self.neuron = [int(n) for n in neuron]
        self.resnet_dt = bool(resnet_dt)
        self.activation_function = activation_function
        self.seed = seed
        self.precision = precision
        self.nets = [FittingNet(self.dim_descrpt, self.neuron, out_dim=1, out_bias=True,
                                activation_function=activation_function, resnet_dt=resnet_dt,
                                seed=child_seed(seed, t), name=f"fitting_type_{t}") for t in range(self.ntypes)]
        self.bias_atom_e = self.add_weight(name="bias_atom_e", shape=(self.ntypes,),
                                           initializer="zeros", trainable=False)
        self.built = True

    def get_dim_out(self):
        return 1

    def call(self, descriptor, atype):
        nf, nloc = tf.shape(atype)[0], tf.shape(atype)[1]
        d = tf.reshape(descriptor, [-1, self.dim_descrpt])
        flat_type = tf.reshape(atype, [-1])
        parts = type_partition(flat_type, self.ntypes)
        outs = [self.nets[t](tf.gather(d, idx))[:, 0] for t, idx in enumerate(parts)]
        e = tf.dynamic_stitch([tf.cast(p, tf.int32) for p in parts], outs)
        e = e + tf.gather(self.bias_atom_e, flat_type)
        return tf.reshape(e, [nf, nloc])

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, dim_descrpt=self.dim_descrpt, neuron=self.neuron,
                   resnet_dt=self.resnet_dt, activation_function=self.activation_function,
                   seed=self.seed, precision=self.precision)
        return cfg
