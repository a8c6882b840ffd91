"""``ener`` fitting: per-type fitting nets mapping descriptors to atomic energies.

``E_i = F_{t_i}(D_i) + bias_atom_e[t_i]``; the frame energy is ``sum_i E_i``.
With a type-embedding descriptor (``tebd_dim > 0``, e.g. ``se_atten``) there is ONE net for all
types, fed ``[D_i, e_{t_i}]`` (DeePMD-kit's TF ``mixed_types`` fitting):
``E_i = F([D_i, e_{t_i}]) + bias_atom_e[t_i]``.
``bias_atom_e`` is a non-trainable per-type weight set from data (:func:`dpkeras.stat.compute_energy_bias`)
or taken from a pretrained model.
With ``numb_fparam``/``numb_aparam`` > 0 the net input is extended by the normalized frame
parameters ``(fparam - fparam_avg) * fparam_inv_std`` (the same for every atom of a frame) and
atomic parameters ``(aparam - aparam_avg) * aparam_inv_std``, in that order after the descriptor
(and the type embedding), as DeePMD-kit's TF ``EnerFitting``; the statistics are non-trainable
weights set from data (:func:`param_stats`).
``layer_name`` (one name or None per layer, the output layer last) shares layers between the
fitting nets of a multi-task model: layer ``k`` of type ``t``'s net is ``f"{name}_type_{t}"``
(one net with a type embedding: ``name``), see :func:`dpkeras.network.layer_sharing`.
"""

import keras
import numpy as np
import tensorflow as tf

from dpkeras.errors import DPKerasError
from dpkeras.fitting.base import Fitting
from dpkeras.network import FittingNet, child_seed, fitting_net_dict, net_dtype, \
    net_variables
from dpkeras.typesplit import TypeSplit


@keras.saving.register_keras_serializable(package="dpkeras")
class EnerFitting(Fitting):
    """``call(descriptor [nf, nloc, dim_descrpt], atype [nf, nloc], type_counts=None)`` -> atomic
    energy ``[nf, nloc]``."""

    fitting_type = "ener"

    def __init__(self, ntypes, dim_descrpt, neuron=(120, 120, 120), resnet_dt=True,
                 activation_function="tanh", trainable=True, seed=None, precision="float64",
                 tebd_dim=0, layer_name=None, numb_fparam=0, numb_aparam=0, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(trainable=trainable, **kwargs)
        self.ntypes, self.dim_descrpt = int(ntypes), int(dim_descrpt)
        self.neuron = [int(n) for n in neuron]
        self.resnet_dt = bool(resnet_dt)
        self.activation_function = activation_function
        self.seed = seed
        self.precision = precision
        self.net_dtype = net_dtype(precision)
        self.tebd_dim = int(tebd_dim)
        self.numb_fparam, self.numb_aparam = int(numb_fparam), int(numb_aparam)
        in_dim = self.dim_descrpt + self.numb_fparam + self.numb_aparam
        self.layer_name = None if layer_name is None else list(layer_name)

        def names(suffix):
            return None if layer_name is None else [
                None if n is None else n + suffix for n in layer_name]

        if self.tebd_dim:
            self.nets = [FittingNet(in_dim + self.tebd_dim, self.neuron, out_dim=1,
                                    out_bias=True, activation_function=activation_function,
                                    resnet_dt=resnet_dt, seed=child_seed(seed, 0),
                                    layer_names=names(""), dtype=self.net_dtype,
                                    name="fitting_all")]
        else:
            self.nets = [FittingNet(in_dim, self.neuron, out_dim=1, out_bias=True,
                                    activation_function=activation_function,
                                    resnet_dt=resnet_dt, seed=child_seed(seed, t),
                                    layer_names=names(f"_type_{t}"), dtype=self.net_dtype,
                                    name=f"fitting_type_{t}")
                         for t in range(self.ntypes)]
        self.bias_atom_e = self.add_weight(name="bias_atom_e", shape=(self.ntypes,),
                                           initializer="zeros", trainable=False)
        self.fparam_avg = self.fparam_inv_std = self.aparam_avg = self.aparam_inv_std = None
        for pname, dim in (("fparam", self.numb_fparam), ("aparam", self.numb_aparam)):
            if dim:
                setattr(self, f"{pname}_avg", self.add_weight(
                    name=f"{pname}_avg", shape=(dim,), initializer="zeros", trainable=False))
                setattr(self, f"{pname}_inv_std", self.add_weight(
                    name=f"{pname}_inv_std", shape=(dim,), initializer="ones", trainable=False))
        self.built = True

    def get_dim_out(self):
        return 1

    def _inputs(self, descriptor, type_embedding, fparam, aparam):
        """``[nf, nloc, in_dim]``: descriptor, type embedding, normalized fparam and aparam."""
        parts = [descriptor]
        if self.tebd_dim:
            parts.append(type_embedding)
        for pname, value in (("fparam", fparam), ("aparam", aparam)):
            if getattr(self, f"numb_{pname}") and value is None:
                raise DPKerasError(f"the model has numb_{pname} = "
                                   f"{getattr(self, f'numb_{pname}')} but no {pname} was given "
                                   "(the SavedModel signatures do not take one yet)")
        if self.numb_fparam:
            f = (tf.reshape(tf.cast(fparam, descriptor.dtype), [-1, self.numb_fparam])
                 - self.fparam_avg) * self.fparam_inv_std
            parts.append(tf.broadcast_to(f[:, None, :], tf.concat(
                [tf.shape(descriptor)[:2], [self.numb_fparam]], 0)))
        if self.numb_aparam:
            a = tf.reshape(tf.cast(aparam, descriptor.dtype),
                           tf.concat([tf.shape(descriptor)[:2], [self.numb_aparam]], 0))
            parts.append((a - self.aparam_avg) * self.aparam_inv_std)
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

    def call(self, descriptor, atype, type_counts=None, type_embedding=None, fparam=None,
             aparam=None):
        """``type_embedding [nf, nloc, tebd_dim]``: required when ``tebd_dim > 0``;
        ``fparam [nf, numb_fparam]`` and ``aparam [nf, nloc, numb_aparam]``: required when
        those are > 0."""
        # float64 inputs; the nets in their precision; the bias added in float64 (DeePMD-kit)
        x = tf.cast(self._inputs(descriptor, type_embedding, fparam, aparam), self.net_dtype)
        if self.tebd_dim:
            nf, nloc = tf.shape(atype)[0], tf.shape(atype)[1]
            out = tf.reshape(self.nets[0](tf.reshape(x, [-1, x.shape[-1]]))[:, 0], [nf, nloc])
        else:
            split = TypeSplit(atype, self.ntypes, type_counts)
            out = split.merge([self.nets[t](d)[:, 0] for t, d in enumerate(split.split(x))])
        return tf.cast(out, tf.float64) + tf.gather(self.bias_atom_e, atype)

    # --- DeePMD-kit's serialized dict --------------------------------------------------------
    def serialize(self, type_map=None):
        """DeePMD-kit's ``ener`` fitting dict (``@version`` 4). As in its TF backend,
        ``dim_descrpt`` includes the type embedding, not fparam/aparam."""
        w = self.get_variables()
        ntypes, mixed = self.ntypes, bool(self.tebd_dim)
        nfp, nap = self.numb_fparam, self.numb_aparam
        dim = self.dim_descrpt + self.tebd_dim
        nets = [fitting_net_dict(net, dim + nfp + nap, self.neuron, self.activation_function,
                                 self.resnet_dt) for net in w["fitting"]]
        stats = {f"{n}_{s}": (w[f"{n}_{s}"] if k else None)
                 for n, k in (("fparam", nfp), ("aparam", nap)) for s in ("avg", "inv_std")}
        return {
            "@class": "Fitting", "type": "ener", "@version": 4, "var_name": "energy",
            "ntypes": ntypes, "dim_descrpt": dim, "mixed_types": mixed, "dim_out": 1,
            "neuron": self.neuron, "resnet_dt": self.resnet_dt, "numb_fparam": nfp,
            "numb_aparam": nap, "dim_case_embd": 0, "default_fparam": None, "rcond": None,
            "tot_ener_zero": False, "trainable": self._trainable_list(), "atom_ener": [],
            "activation_function": self.activation_function, "precision": self.net_dtype,
            "layer_name": None, "use_aparam_as_mask": False, "spin": None,
            "exclude_types": [],
            "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 0 if mixed else 1,
                     "ntypes": ntypes, "network_type": "fitting_network", "networks": nets},
            "@variables": dict({"bias_atom_e": w["bias_atom_e"].reshape(ntypes, 1)}, **stats,
                               case_embd=None),
            "type_map": type_map,
        }

    @classmethod
    def from_serialized(cls, data, ntypes, source, tebd_dim=0):
        """``(fitting_net section, variables)`` of an ``ener`` dict; ``tebd_dim``: the width
        of the descriptor's type embedding (0: one net per type). The model's ``out_bias`` is
        added to ``bias_atom_e`` by the caller."""
        fit = data
        if fit.get("dim_case_embd", 0):
            raise DPKerasError(f"{source}: fitting.dim_case_embd = {fit['dim_case_embd']} is "
                               "not supported yet")
        nets = fit["nets"]["networks"]
        if tebd_dim:
            if len(nets) != 1 or int(nets[0]["in_dim"]) != int(fit["dim_descrpt"]):
                raise DPKerasError(f"{source}: expected one shared fitting net of input width "
                                   f"dim_descrpt = {fit['dim_descrpt']} (descriptor + type "
                                   "embedding)")
            nets = nets[:1]
        elif any(n is None for n in nets):
            raise DPKerasError(f"{source}: a fitting net of a selected type is missing")
        variables = {"fitting": [net_variables(n, source, "fitting") for n in nets],
                     "bias_atom_e": np.asarray(fit["@variables"]["bias_atom_e"],
                                               np.float64).reshape(ntypes)}
        trainable = fit.get("trainable", True)
        section = {"type": "ener", "neuron": list(fit["neuron"]),
                   "resnet_dt": bool(fit["resnet_dt"]),
                   "activation_function": fit.get("activation_function", "tanh"),
                   "trainable": list(trainable) if isinstance(trainable, list)
                   else bool(trainable)}
        for key in ("numb_fparam", "numb_aparam"):
            if fit.get(key, 0):
                section[key] = int(fit[key])
                name = key[5:]                               # fparam / aparam
                for stat in ("avg", "inv_std"):
                    variables[f"{name}_{stat}"] = np.asarray(fit["@variables"][f"{name}_{stat}"],
                                                             np.float64).reshape(-1)
        if fit.get("precision") == "float32":
            section["precision"] = "float32"
        return section, variables

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, dim_descrpt=self.dim_descrpt, neuron=self.neuron,
                   resnet_dt=self.resnet_dt, activation_function=self.activation_function,
                   seed=self.seed, precision=self.precision, tebd_dim=self.tebd_dim,
                   layer_name=self.layer_name, numb_fparam=self.numb_fparam,
                   numb_aparam=self.numb_aparam)
        return cfg


def param_stats(data, name, dim, nframes=None, protect=1e-2):
    """DeePMD-kit's fparam/aparam statistics: ``(avg [dim], inv_std [dim])`` over the frames
    (fparam) or atoms (aparam) of every system, a std below ``protect`` set to it.

    ``data``: a :class:`dpkeras.data.pipeline.DataSystems`; ``nframes``: frames per system used
    (``None``: all)."""
    rows = []
    for s in data.systems:
        if name not in s.labels:
            raise DPKerasError(f"{s.path}: {name}.npy is missing; the model has "
                               f"numb_{name} = {dim}")
        n = s.nframes if nframes is None else min(nframes, s.nframes)
        rows.append(np.asarray(s.labels[name][:n]).reshape(-1, dim))
    x = np.concatenate(rows)
    avg = x.mean(axis=0)
    std = np.sqrt(np.maximum((x * x).mean(axis=0) - avg * avg, 0.0))
    std = np.where(std < protect, protect, std)
    return avg, 1.0 / std
