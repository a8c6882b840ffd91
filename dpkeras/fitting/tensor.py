"""``dipole`` and ``polar`` fittings: equivariant atomic tensors from the descriptor and its
rotation matrix (DeePMD-kit's TF ``DipoleFittingSeA`` / ``PolarFittingSeA``).

For an atom ``i`` of a selected type ``t`` (``sel_type``) with descriptor ``D_i`` and rotation
matrix ``R_i [M1, 3]`` (:meth:`dpkeras.descriptor.se_e2_a.DescrptSeA.call_with_rot_mat`)::

    dipole:  a_i = F_t(D_i) [M1]                    mu_i = a_i R_i                       [3]
    polar:   A_i = diag(F_t(D_i)) [M1, M1]          (fit_diag)
           or A_i = W_i + W_i^T, W_i = F_t(D_i) as [M1, M1]
             alpha_i = scale[s] * R_i^T A_i R_i + constant_matrix[s] * I            [3, 3]

``F_t`` is a per-type fitting net (``layer_k_type_t``/``final_layer_type_t`` in DeePMD-kit), ``s``
the position of ``t`` in the sorted ``sel_type`` (DeePMD-kit's TF backend indexes ``scale`` and
``constant_matrix`` that way). Atoms of other types get zeros, as ``DeepDipole``/``DeepPolar``
return them; the frame tensor is the sum over atoms.
"""

import keras
import numpy as np
import tensorflow as tf

from dpkeras.errors import DPKerasError
from dpkeras.fitting.base import Fitting
from dpkeras.network import FittingNet, child_seed, fitting_net_dict, net_variables
from dpkeras.typesplit import TypeSplit


class TensorFitting(Fitting):
    """Base of the tensor fittings.

    ``call(descriptor [nf, nloc, dim_descrpt], rot_mat [nf, nloc, M1, 3], atype [nf, nloc],
    type_counts=None)`` -> atomic tensor ``[nf, nloc, tensor_size]`` (zeros on atoms whose type
    is not in ``sel_type``).

    Args:
      ntypes: number of atom types.
      dim_descrpt: descriptor width.
      embedding_width: ``M1``, rows of the rotation matrix.
      sel_type: the types that carry a tensor (``None``: all), sorted.
    """

    fitting_type = None
    tensor_size = None
    label_name = None

    def __init__(self, ntypes, dim_descrpt, embedding_width, neuron=(120, 120, 120),
                 resnet_dt=True, activation_function="tanh", sel_type=None, seed=None,
                 precision="float64", **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.ntypes, self.dim_descrpt = int(ntypes), int(dim_descrpt)
        self.embedding_width = int(embedding_width)
        self.neuron = [int(n) for n in neuron]
        self.resnet_dt = bool(resnet_dt)
        self.activation_function = activation_function
        if sel_type is None:
            sel_type = list(range(self.ntypes))
        elif isinstance(sel_type, int):
            sel_type = [sel_type]
        self.sel_type = sorted(int(t) for t in sel_type)
        self.seed = seed
        self.precision = precision
        self.nets = [FittingNet(self.dim_descrpt, self.neuron, out_dim=self.net_out_dim(),
                                out_bias=True, activation_function=activation_function,
                                resnet_dt=resnet_dt, seed=child_seed(seed, t),
                                name=f"fitting_type_{t}")
                     for t in self.sel_type]

    def net_out_dim(self):
        raise NotImplementedError

    def get_sel_type(self):
        return list(self.sel_type)

    def get_dim_out(self):
        return self.tensor_size

    def _tensor(self, net_out, rot, sel_index):
        """``net_out [n, net_out_dim]``, ``rot [n, M1, 3]`` -> ``[n, tensor_size]``."""
        raise NotImplementedError

    def call(self, descriptor, rot_mat, atype, type_counts=None):
        split = TypeSplit(atype, self.ntypes, type_counts)
        blocks = zip(split.split(descriptor), split.split(rot_mat))
        outs = []
        for t, (d, rot) in enumerate(blocks):
            if t in self.sel_type:
                s = self.sel_type.index(t)
                outs.append(self._tensor(self.nets[s](d), rot, s))
            else:
                outs.append(tf.zeros([tf.shape(d)[0], self.tensor_size], d.dtype))
        return split.merge(outs)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, dim_descrpt=self.dim_descrpt,
                   embedding_width=self.embedding_width, neuron=self.neuron,
                   resnet_dt=self.resnet_dt, activation_function=self.activation_function,
                   sel_type=self.sel_type, seed=self.seed, precision=self.precision)
        return cfg


@keras.saving.register_keras_serializable(package="dpkeras")
class DipoleFitting(TensorFitting):
    """``dipole`` fitting: atomic dipoles ``[nf, nloc, 3]``."""

    fitting_type = "dipole"
    tensor_size = 3
    label_name = "dipole"

    def net_out_dim(self):
        return self.embedding_width

    def _tensor(self, net_out, rot, sel_index):
        return tf.einsum("nm,nmc->nc", net_out, rot)

    # --- DeePMD-kit's serialized dict --------------------------------------------------------
    def serialize(self, type_map=None):
        """DeePMD-kit's TF ``dipole`` fitting dict: nets of the selected types, ``null``
        elsewhere (the others are its ``exclude_types``)."""
        ntypes, m1 = self.ntypes, self.embedding_width
        nets = [None] * ntypes
        for t, net in zip(self.sel_type, self.get_variables()["fitting"]):
            nets[t] = fitting_net_dict(net, self.dim_descrpt, self.neuron,
                                       self.activation_function, self.resnet_dt, out_dim=m1)
        return {
            "@class": "Fitting", "type": "dipole", "@version": 4, "ntypes": ntypes,
            "dim_descrpt": self.dim_descrpt, "embedding_width": m1, "mixed_types": False,
            "neuron": self.neuron, "resnet_dt": self.resnet_dt, "numb_fparam": 0,
            "numb_aparam": 0, "dim_case_embd": 0, "default_fparam": None,
            "activation_function": self.activation_function, "precision": "float64",
            "exclude_types": [t for t in range(ntypes) if t not in self.sel_type],
            "@variables": {"fparam_avg": None, "fparam_inv_std": None, "aparam_avg": None,
                           "aparam_inv_std": None, "case_embd": None,
                           "bias_atom_e": np.zeros((ntypes, m1))},
            "type_map": type_map, "var_name": "dipole", "rcond": None, "tot_ener_zero": False,
            "trainable": self._trainable_list(), "layer_name": None,
            "use_aparam_as_mask": False, "spin": None, "r_differentiable": True,
            "c_differentiable": True,
            "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 1,
                     "ntypes": ntypes, "network_type": "fitting_network", "networks": nets},
        }

    @classmethod
    def from_serialized(cls, data, ntypes, source, tebd_dim=0):
        """``(fitting_net section, variables)`` of a TF ``dipole`` dict (nets only for the
        selected types; the others excluded and null). A non-zero output bias is refused."""
        fit = data
        for key in ("dim_case_embd", "numb_fparam", "numb_aparam"):
            if fit.get(key, 0):
                raise DPKerasError(f"{source}: fitting.{key} = {fit[key]} is not supported yet")
        if np.any(np.asarray(fit["@variables"].get("bias_atom_e", 0.0))):
            raise DPKerasError(f"{source}: a dipole model with a non-zero output bias is not "
                               "supported (DeePMD-kit's TF backend has none)")
        nets = fit["nets"]["networks"]
        excluded = set(fit.get("exclude_types", []))
        sel_type = [t for t in range(ntypes) if t not in excluded]
        if any(nets[t] is None for t in sel_type):
            raise DPKerasError(f"{source}: a fitting net of a selected type is missing")
        section = {"type": "dipole", "neuron": list(fit["neuron"]),
                   "resnet_dt": bool(fit["resnet_dt"]),
                   "activation_function": fit.get("activation_function", "tanh"),
                   "sel_type": sel_type}
        if fit.get("precision") == "float32":
            section["precision"] = "float32"
        return section, {"fitting": [net_variables(nets[t], source, "fitting")
                                     for t in sel_type]}


@keras.saving.register_keras_serializable(package="dpkeras")
class PolarFitting(TensorFitting):
    """``polar`` fitting: atomic polarizabilities ``[nf, nloc, 9]`` (row-major 3x3).

    Extra args: ``fit_diag`` (the net gives the diagonal of ``A`` only), ``scale`` (a float or
    one per type), ``shift_diag`` (add ``constant_matrix[s] * I``, the non-trainable per-type
    mean diagonal set from data by :func:`polar_constant_matrix`).
    """

    fitting_type = "polar"
    tensor_size = 9
    label_name = "polarizability"

    def __init__(self, ntypes, dim_descrpt, embedding_width, fit_diag=True, scale=1.0,
                 shift_diag=True, **kwargs):
        self.fit_diag = bool(fit_diag)
        if isinstance(scale, (int, float)):
            scale = [float(scale)] * int(ntypes)
        self.scale = [float(x) for x in scale]
        self.shift_diag = bool(shift_diag)
        super().__init__(ntypes, dim_descrpt, embedding_width, **kwargs)
        self.constant_matrix = self.add_weight(name="constant_matrix", shape=(self.ntypes,),
                                               initializer="zeros", trainable=False)
        self.built = True

    def net_out_dim(self):
        m = self.embedding_width
        return m if self.fit_diag else m * m

    def serialize(self, type_map=None):
        raise DPKerasError("a polar model has no DeePMD-kit serialized form dpkeras writes "
                           "(DeePMD-kit cannot read its own polar .dp files back); save it as "
                           ".keras or a SavedModel directory")

    def _tensor(self, net_out, rot, sel_index):
        m = self.embedding_width
        if self.fit_diag:
            a = tf.linalg.diag(net_out)
        else:
            w = tf.reshape(net_out, [-1, m, m])
            a = w + tf.transpose(w, [0, 2, 1])
        t = tf.matmul(rot, tf.matmul(a, rot), transpose_a=True)          # [n, 3, 3]
        t = t * self.scale[sel_index]
        t = t + self.constant_matrix[sel_index] * tf.eye(3, dtype=t.dtype)
        return tf.reshape(t, [-1, 9])

    def get_config(self):
        cfg = super().get_config()
        cfg.update(fit_diag=self.fit_diag, scale=self.scale, shift_diag=self.shift_diag)
        return cfg


def polar_constant_matrix(data, sel_type, ntypes, nframes=None):
    """DeePMD-kit's ``shift_diag`` statistics: ``[ntypes]`` mean diagonal polarizability per
    selected type (zero elsewhere).

    One least-squares row per system: with atomic labels, one row per selected type (its atom
    count, the sum over its atoms of the frame-averaged atomic polarizability); with only the
    frame label, one row of the counts of each selected type and the mean frame polarizability.
    ``data``: a :class:`dpkeras.data.pipeline.DataSystems`; ``nframes``: frames per system used
    (``None``: all).
    """
    rows, rhs = [], []
    nsel = len(sel_type)
    for s in data.systems:
        n = s.nframes if nframes is None else min(nframes, s.nframes)
        if "atomic_polarizability" in s.labels:
            lab = s.labels["atomic_polarizability"][:n]                 # [n, natoms, 9]
            for k, t in enumerate(sel_type):
                idx = np.where(s.atype == t)[0]
                row = np.zeros(nsel)
                row[k] = len(idx)
                rows.append(row)
                rhs.append(lab[:, idx, :].sum(axis=(0, 1)) / n)
        elif "polarizability" in s.labels:
            rows.append(np.array([np.sum(s.atype == t) for t in sel_type], float))
            rhs.append(s.labels["polarizability"][:n].mean(axis=0))
    out = np.zeros(ntypes)
    if not rows:
        return out
    sol = np.linalg.lstsq(np.asarray(rows), np.asarray(rhs), rcond=None)[0]
    for k, t in enumerate(sel_type):
        out[t] = np.mean(np.diagonal(sol[k].reshape(3, 3)))
    return out
