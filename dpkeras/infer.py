"""DeePMD-kit's inference API on any model dpkeras can load: ``DeepPot`` (energy models),
``DeepDipole`` and ``DeepPolar`` (tensor models).

Example::

    from dpkeras.infer import DeepPot, DeepDipole
    dp = DeepPot("frozen_model.pb")            # or a SavedModel dir, .keras, .dp, run dir
    e, f, v = dp.eval(coords, cells, atom_types)
    e, f, v, ae, av = dp.eval(coords, None, atom_types, atomic=True)   # no PBC
    dipole = DeepDipole("dipole.pb").eval(coords, cells, atom_types, atomic=False)  # [nf, 3]
"""

import logging

import numpy as np
import tensorflow as tf

from dpkeras.errors import DPKerasError
from dpkeras.load import load_model
from dpkeras.serving import SortedEvaluator, make_serving_fn, model_neighbor_list
from dpkeras.tabulate import beyond_table

log = logging.getLogger("dpkeras")


class _DeepEval:
    """What every inference class shares: loading, getters, input checks and the evaluation
    through :mod:`dpkeras.serving` (one compiled function per composition)."""

    model_kinds = ()

    def __init__(self, path, head=None):
        """``head``: the head of a multi-task model (``python -m dpkeras.show PATH
        model-branch`` lists them)."""
        self.path = path
        model, self.kind = load_model(path, head=head)
        self._set_model(model)

    @classmethod
    def from_model(cls, model, name="model"):
        """An instance around an already loaded model (e.g. ``dpkeras.zoo.load``)."""
        self = cls.__new__(cls)
        self.path, self.kind = name, "model"
        self._set_model(model)
        return self

    def _set_model(self, model):
        kind = _model_kind(model)
        if kind not in self.model_kinds:
            raise DPKerasError(f"{self.path}: a {kind} model; load it with "
                               f"{_CLASS_OF[kind]}, not {type(self).__name__}")
        self.model = model
        self._serve = make_serving_fn(model)
        self._sorted = SortedEvaluator(model)
        self._check_every, self._beyond = beyond_table(model)
        self._evaluations = 0

    def get_type_map(self):
        return self.model.get_type_map()

    def get_rcut(self):
        return self.model.get_rcut()

    def get_ntypes(self):
        return self.model.get_ntypes()

    def get_sel(self):
        return self.model.get_sel()

    def _run(self, coords, cells, atom_types, atomic, extra=None):
        """Checked inputs -> the model's output dict (numpy, caller's atom order).

        ``extra``: ``{"fparam": [nf, nfp], "aparam": [nf, nat, nap]}``."""
        out = self._evaluate(coords, cells, atom_types, atomic, extra)
        if self._check_every > 0:
            self._evaluations += 1
            if self._evaluations % self._check_every == 0:
                self._check_tables()
        return out

    def _check_tables(self):
        """A compressed model checked at run time: warn when inputs fell outside its tables
        since the last check (their outputs are the tables continued linearly, not the nets')."""
        _, count = beyond_table(self.model)
        if count > self._beyond:
            log.warning("%s: %d inputs of the compressed embedding nets fell outside their "
                        "tables in the last %d evaluations (atoms closer than the tables' "
                        "range); the results there are the tables continued linearly, not "
                        "the nets': compress again with a larger --extrapolate or use the "
                        "uncompressed model", self.path, count - self._beyond, self._check_every)
        self._beyond = count

    def _evaluate(self, coords, cells, atom_types, atomic, extra):
        coord, atype, box = self._inputs(coords, cells, atom_types)
        nf = coord.shape[0]
        extra = extra or {}
        if np.all(atype == atype[:1]):   # one composition for all frames: the compiled path
            return self._sorted(coord, atype[0], box, cells is not None, atomic, extra)
        if extra:   # frame by frame, each its own composition
            outs = [self._sorted(coord[i:i + 1], atype[i], box[i:i + 1], cells is not None,
                                 atomic, {k: v[i:i + 1] for k, v in extra.items()})
                    for i in range(nf)]
            return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        return {k: v.numpy() for k, v in self._serve(coord, atype, box).items()}

    def _inputs(self, coords, cells, atom_types):
        """Checked ``coord [nf, nat, 3]``, ``atype [nf, nat]`` and ``box [nf, 3, 3]`` (zeros
        when ``cells`` is None)."""
        raw = np.asarray(atom_types)
        if raw.size == 0:
            raise DPKerasError("atom_types is empty: nothing to evaluate (give at least one "
                               "atom)")
        if not np.issubdtype(raw.dtype, np.integer):
            if not np.issubdtype(raw.dtype, np.number) or np.any(raw != np.round(raw)):
                raise DPKerasError(f"atom_types must be integer type indices, got {raw.dtype} "
                                   "values (map element names with the model's type_map)")
        atype = raw.astype(np.int32)
        natoms = atype.shape[-1]
        coord = np.asarray(coords, dtype=np.float64)
        if not np.all(np.isfinite(coord)):
            bad = np.argwhere(~np.isfinite(coord.reshape(-1, natoms, 3)))[0]
            raise DPKerasError(f"coords has a non-finite value (frame {bad[0]}, atom {bad[1]}); "
                               "the evaluation would return NaN")
        if coord.size % (natoms * 3):
            per_frame = coord.shape[-2] * 3 if coord.ndim == 3 else (
                coord.shape[-1] if coord.ndim == 2 else coord.size)
            raise DPKerasError(f"atom_types lists {natoms} atoms but coords has {coord.size} "
                               f"values ({per_frame // 3} atoms per frame?), not a multiple of "
                               f"natoms*3 = {natoms * 3}: atom_types and coords must describe "
                               "the same atoms")
        coord = coord.reshape(-1, natoms, 3)
        nf = coord.shape[0]
        if atype.ndim == 1:
            atype = np.tile(atype[None], (nf, 1))
        if atype.shape != (nf, natoms):
            raise DPKerasError(f"atom_types has shape {atype.shape}, expected ({natoms},) or "
                               f"({nf}, {natoms})")
        if atype.min() < 0 or atype.max() >= self.get_ntypes():
            raise DPKerasError(f"atom_types must lie in [0, {self.get_ntypes()}) for type_map "
                               f"{self.get_type_map()}")
        if cells is None:
            box = np.zeros((nf, 3, 3))
        else:
            box = np.asarray(cells, dtype=np.float64)
            if box.size != nf * 9:
                raise DPKerasError(f"cells has {box.size} values, expected nframes*9 = {nf * 9}")
            box = box.reshape(nf, 3, 3)
            check_cells(box)
        return coord, atype, box


def check_cells(box):
    """Cells ``[nf, 3, 3]`` must be finite with a volume (periodic boundaries need one)."""
    if not np.all(np.isfinite(box)):
        raise DPKerasError("cells has a non-finite value")
    vol = np.abs(np.linalg.det(box))
    scale = np.maximum(np.prod(np.linalg.norm(box, axis=-1), axis=-1), 1e-300)
    bad = np.nonzero(vol <= 1e-10 * scale)[0]
    if bad.size:
        raise DPKerasError(f"cells of frame {bad[0]} has zero volume ({box[bad[0]].tolist()}); "
                           "give three independent cell vectors, or cells=None for a system "
                           "without periodic boundaries")


class DeepPot(_DeepEval):
    """A loaded energy model. ``path``: any format accepted by :func:`dpkeras.load.load_model`."""

    model_kinds = ("ener",)

    def get_dim_fparam(self):
        return self.model.fitting.numb_fparam

    def get_dim_aparam(self):
        return self.model.fitting.numb_aparam

    def get_sel_type(self):
        """``[]``: an energy model has no selected types (DeePMD-kit's answer)."""
        return []

    def eval_descriptor(self, coords, cells, atom_types, fparam=None, aparam=None):
        """DeePMD-kit's ``DeepPot.eval_descriptor``: the descriptor of every atom, ``[nf,
        natoms, dim_out]`` (a hybrid's members side by side). ``fparam``/``aparam`` do not
        enter the descriptor."""
        del fparam, aparam
        coord, atype, box = self._inputs(coords, cells, atom_types)
        if not hasattr(self, "_descr"):
            model = self.model

            def descr(c, t, b, pbc):
                nlist, shift = model_neighbor_list(model, c, t, b, pbc)
                return model.eval_descriptor({"coord": c, "box": b, "atype": t, "nlist": nlist,
                                              "shift": shift})

            self._descr = tf.function(descr, reduce_retracing=True)
        return self._descr(coord, atype, box, tf.constant(cells is not None)).numpy()

    def eval(self, coords, cells, atom_types, atomic=False, fparam=None, aparam=None):
        """Evaluate energies, forces and virials.

        Args:
          coords: ``[nframes, natoms * 3]`` (or ``[nframes, natoms, 3]``), Angstrom.
          cells: ``[nframes, 9]`` cell vectors as rows, or ``None`` for no PBC.
          atom_types: ``[natoms]`` (or ``[nframes, natoms]``) in the model's type indices.
          atomic: also return atomic energies and virials.
          fparam: frame parameters ``[nframes, numb_fparam]`` (or ``[numb_fparam]`` for all
            frames), for a model with ``numb_fparam > 0``.
          aparam: atomic parameters ``[nframes, natoms * numb_aparam]`` (or
            ``[natoms * numb_aparam]`` for all frames), for a model with ``numb_aparam > 0``.

        Returns ``energy [nf, 1]``, ``force [nf, natoms, 3]``, ``virial [nf, 9]`` and, with
        ``atomic``, ``atom_energy [nf, natoms, 1]`` and ``atom_virial [nf, natoms, 9]``.
        """
        natoms = np.asarray(atom_types).shape[-1]
        nf = np.asarray(coords).size // (3 * natoms) if natoms else 0
        extra = {}
        for name, value, dim, width in (
                ("fparam", fparam, self.get_dim_fparam(), self.get_dim_fparam()),
                ("aparam", aparam, self.get_dim_aparam(), natoms * self.get_dim_aparam())):
            if dim == 0:
                if value is not None:
                    raise DPKerasError(f"{name} given but the model takes none "
                                       f"(numb_{name} = 0)")
                continue
            if value is None:
                raise DPKerasError(f"the model needs {name} (numb_{name} = {dim}); pass "
                                   f"{name}= to eval")
            v = np.asarray(value, np.float64)
            if v.size == width:
                v = np.tile(v.reshape(1, width), (nf, 1))
            if v.size != nf * width:
                raise DPKerasError(f"{name} has {v.size} values, expected nframes*{width} = "
                                   f"{nf * width}")
            extra[name] = v.reshape(nf, natoms, dim) if name == "aparam" else v.reshape(nf, dim)
        out = self._run(coords, cells, atom_types, atomic, extra)
        res = (out["energy"], out["force"], out["virial"])
        if atomic:
            res += (out["atom_energy"][..., None], out["atom_virial"])
        return res


class DeepTensor(_DeepEval):
    """A loaded ``dipole``/``polar`` model (DeePMD-kit's ``DeepTensor``)."""

    model_kinds = ("dipole", "polar")

    def get_sel_type(self):
        """The atom types that carry a tensor."""
        return self.model.get_sel_type()

    def get_output_dim(self):
        return self.model.fitting.tensor_size

    def get_dim_fparam(self):
        return 0

    def get_dim_aparam(self):
        return 0

    def eval(self, coords, cells, atom_types, atomic=True, fparam=None, aparam=None):
        """The atomic tensors ``[nf, natoms, size]`` (zeros on atoms whose type is not in
        ``sel_type``) or, with ``atomic=False``, the frame tensor ``[nf, size]``: DeePMD-kit 3's
        ``DeepTensor.eval``, whose default is ``atomic=True`` too (``size`` 3 or 9). Arguments as
        :meth:`DeepPot.eval`; ``fparam``/``aparam`` exist for DeePMD-kit's signature (its TF
        tensor fittings take none)."""
        self._no_params(fparam, aparam)
        out = self._run(coords, cells, atom_types, atomic)
        return out["atom_tensor"] if atomic else out["tensor"]

    def _no_params(self, fparam, aparam):
        for name, value in (("fparam", fparam), ("aparam", aparam)):
            if value is not None:
                raise DPKerasError(f"{self.path}: a {self.model.fitting.fitting_type} model takes "
                                   f"no {name} (DeePMD-kit's tensor fittings have none); leave "
                                   "it None")

    def eval_full(self, coords, cells, atom_types, atomic=False, fparam=None, aparam=None):
        """DeePMD-kit's ``eval_full``: the frame tensor ``[nf, size]``, the force of each of its
        components ``-dT_k/dr_i`` ``[nf, size, natoms, 3]`` and their virials ``[nf, size, 9]``;
        with ``atomic`` also the atomic tensors ``[nf, natoms, size]`` and atomic virials
        ``[nf, size, natoms, 9]``. Arguments as :meth:`DeepPot.eval`."""
        self._no_params(fparam, aparam)
        coord, atype, box = self._inputs(coords, cells, atom_types)
        if not hasattr(self, "_full"):
            model = self.model

            def full(c, t, b, pbc):
                nlist, shift = model_neighbor_list(model, c, t, b, pbc)
                return model.call_with_derivatives(
                    {"coord": c, "box": b, "atype": t, "nlist": nlist, "shift": shift})

            self._full = tf.function(full, reduce_retracing=True)
        out = {k: v.numpy() for k, v in self._full(coord, atype, box,
                                                   tf.constant(cells is not None)).items()}
        res = (out["tensor"], out["force"], out["virial"])
        if atomic:
            res += (out["atom_tensor"], out["atom_virial"])
        return res


class DeepDipole(DeepTensor):
    """A loaded dipole model; ``eval`` gives dipoles ``[nf, 3]`` / ``[nf, natoms, 3]``."""

    model_kinds = ("dipole",)


class DeepPolar(DeepTensor):
    """A loaded polarizability model; ``eval`` gives ``[nf, 9]`` / ``[nf, natoms, 9]``."""

    model_kinds = ("polar",)


_CLASS_OF = {"ener": "DeepPot", "dipole": "DeepDipole", "polar": "DeepPolar"}


def open_deep_pot(model_or_name, head=None):
    """A :class:`DeepPot` from a model path (any format), a zoo name (``python -m dpkeras.zoo
    list``) or an already loaded energy model: what the ASE calculator, LAMMPS and i-PI take."""
    import os

    if isinstance(model_or_name, str) and not os.path.exists(model_or_name):
        import dpkeras.zoo

        if model_or_name not in dpkeras.zoo.cards():
            raise DPKerasError(f"{model_or_name}: no such model file, and not a zoo name "
                               f"({', '.join(dpkeras.zoo.list())})")
        return DeepPot.from_model(dpkeras.zoo.load(model_or_name, head=head), model_or_name)
    if isinstance(model_or_name, str):
        return DeepPot(model_or_name, head=head)
    return DeepPot.from_model(model_or_name, type(model_or_name).__name__)


def DeepEval(path, head=None):   # noqa: N802 (DeePMD-kit's name, a factory as theirs)
    """The inference object of the right class for the model at ``path``, as DeePMD-kit's
    ``deepmd.infer.DeepEval``: a :class:`DeepPot`, :class:`DeepDipole` or
    :class:`DeepPolar`."""
    model, kind = load_model(path, head=head)
    cls = {"ener": DeepPot, "dipole": DeepDipole, "polar": DeepPolar}[_model_kind(model)]
    out = cls.from_model(model, path)
    out.kind = kind
    return out


def _model_kind(model):
    return model.fitting.fitting_type
