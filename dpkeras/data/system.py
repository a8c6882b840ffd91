"""Read one DeePMD-kit system (npy directory or ``file.h5#/group``).

A system holds ``natoms`` atoms of fixed types and ``nframes`` frames:

* ``type.raw`` (natoms ints) and optional ``type_map.raw`` (element names);
* ``set.*/coord.npy [nf, natoms*3]`` Angstrom, ``box.npy [nf, 9]`` (cell vectors as rows),
  ``energy.npy [nf]`` eV, ``force.npy [nf, natoms*3]`` eV/A, ``virial.npy [nf, 9]`` eV,
  ``atom_ener.npy [nf, natoms]`` eV; tensor labels ``dipole.npy [nf, 3]``,
  ``atomic_dipole.npy [nf, natoms*3]``, ``polarizability.npy [nf, 9]``,
  ``atomic_polarizability.npy [nf, natoms*9]`` (atomic labels for every atom, zeros on the atoms
  of types outside ``sel_type``; or, DeePMD-kit 2.x's layout, for the ``sel_type`` atoms only,
  ``[nf, nsel*3]``, read when the model's ``sel_type`` is given); frame / atomic parameters
  ``fparam.npy [nf, nfp]``,
  ``aparam.npy [nf, natoms*nap]``;
* a file ``nopbc`` marks a non-periodic system (``box.npy`` is then ignored).

Types are remapped to the model's ``type_map`` by element name, and atoms are sorted by type
(stable), as DeePMD-kit does, so that per-type blocks are contiguous; ``sort_idx`` maps back.
"""

import glob
import os

import numpy as np

from dpkeras.errors import DPKerasError

# label name -> (per atom, components per frame or atom; None: any number)
LABELS = {
    "energy": (False, 1),
    "force": (True, 3),
    "virial": (False, 9),
    "atom_ener": (True, 1),
    "dipole": (False, 3),
    "atomic_dipole": (True, 3),
    "polarizability": (False, 9),
    "atomic_polarizability": (True, 9),
    "fparam": (False, None),
    "aparam": (True, None),
}


def label_shape(name, nframes, natoms, size=None):
    """Shape of a label in memory: ``energy [nf]``, ``atom_ener [nf, natoms]``, other atomic
    labels ``[nf, natoms, size]``, frame labels ``[nf, size]`` (``size`` for fparam/aparam)."""
    per_atom, k = LABELS[name]
    k = size if k is None else k
    if name == "energy":
        return (nframes,)
    if name == "atom_ener":
        return (nframes, natoms)
    return (nframes, natoms, k) if per_atom else (nframes, k)


def find_systems(paths):
    """Expand each path to the DeePMD-kit systems (directories with ``type.raw``) under it."""
    out = []
    for p in paths:
        if "#" in p or p.endswith((".h5", ".hdf5")) or os.path.isfile(os.path.join(p, "type.raw")):
            out.append(p)
            continue
        if not os.path.isdir(p):
            raise DPKerasError(f"{p}: data system not found")
        found = sorted(root for root, _, files in os.walk(p) if "type.raw" in files)
        if not found:
            raise DPKerasError(f"{p}: no DeePMD-kit system (a directory with type.raw) in it")
        out.extend(found)
    return out


class _Dir:
    """Uniform access to an npy system directory or an HDF5 group."""

    def __init__(self, path):
        self.path = path
        if "#" in path or path.endswith((".h5", ".hdf5")):
            import h5py

            fname, _, group = path.partition("#")
            if not os.path.isfile(fname):
                raise DPKerasError(f"{fname}: HDF5 data file not found")
            self._h5 = h5py.File(fname, "r")
            group = group or "/"
            if group not in self._h5:
                raise DPKerasError(f"{path}: no group {group!r} in {fname}")
            self._g = self._h5[group]
        else:
            self._h5 = None
            if not os.path.isdir(path):
                raise DPKerasError(f"{path}: data system not found (expected a directory with "
                                   "type.raw and set.*/ or an HDF5 'file.h5#/group')")

    def exists(self, name):
        if self._h5 is not None:
            return name in self._g
        return os.path.exists(os.path.join(self.path, name))

    def read_raw(self, name, dtype):
        if self._h5 is not None:
            v = self._g[name][()]
            return np.asarray([x.decode() if isinstance(x, bytes) else x for x in np.ravel(v)]
                              ).astype(dtype)
        with open(os.path.join(self.path, name)) as f:
            return np.asarray(f.read().split(), dtype=dtype)

    def sets(self, prefix):
        if self._h5 is not None:
            return sorted(k for k in self._g if k.startswith(prefix + "."))
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.path,
                                                                            prefix + ".*"))
                      if os.path.isdir(p))

    def load(self, set_name, name):
        """Array of ``set_name/name.npy`` or ``None`` when absent."""
        if self._h5 is not None:
            key = f"{set_name}/{name}.npy"
            return np.asarray(self._g[key][()]) if key in self._g else None
        fname = os.path.join(self.path, set_name, name + ".npy")
        if not os.path.isfile(fname):
            return None
        try:
            return np.load(fname)
        except Exception as exc:
            raise DPKerasError(f"{fname}: cannot read ({exc}); the file is corrupt") from None


MIN_PAIR_DISTANCE = 0.01   # Angstrom: closer atoms are a data error (duplicated coordinates)


def _check_finite(arr, where, natoms=None):
    """NaN or inf anywhere in ``arr [nf, width]`` is an error naming the frame (and atom)."""
    if np.all(np.isfinite(arr)):
        return
    frame, col = np.argwhere(~np.isfinite(np.reshape(arr, (arr.shape[0], -1))))[0]
    atom = f", atom {col // (arr.size // arr.shape[0] // natoms)}" if natoms else ""
    raise DPKerasError(f"{where}: non-finite value (NaN or inf) in frame {frame}{atom}; fix "
                       "or remove that frame")


def _check_overlaps(system, budget=1 << 22):
    """Two atoms closer than :data:`MIN_PAIR_DISTANCE` (minimum image under PBC) in any frame
    is an error naming the frame and the pair (file atom indices). Vectorized over blocks of
    frames (and of atoms for large systems) of about ``budget`` pairs."""
    n = system.natoms
    if n < 2:
        return
    rows = max(1, min(n, budget // n))
    frames = max(1, budget // (rows * n))
    eye = np.eye(n, dtype=bool)
    for f0 in range(0, system.nframes, frames):
        x = system.coord[f0:f0 + frames]                            # [b, n, 3]
        box = system.box[f0:f0 + frames]
        if system.pbc:                                              # fractional coordinates
            x = np.matmul(x, np.linalg.inv(box))
        for lo in range(0, n, rows):
            d = x[:, lo:lo + rows, None, :] - x[:, None, :, :]      # [b, rows, n, 3]
            if system.pbc:                                          # minimum image
                d -= np.round(d)
                d = np.matmul(d.reshape(len(x), -1, 3), box).reshape(d.shape)
            r2 = np.sum(d * d, axis=-1)
            r2[:, eye[lo:lo + rows]] = np.inf
            close = np.argwhere(r2 < MIN_PAIR_DISTANCE ** 2)
            if close.size:
                k, i, j = close[0]
                a, b = sorted((int(system.sort_idx[lo + i]), int(system.sort_idx[j])))
                raise DPKerasError(f"{system.path}: frame {f0 + k}: atoms {a} and {b} are "
                                   f"{np.sqrt(r2[k, i, j]):.3g} A apart (closer than "
                                   f"{MIN_PAIR_DISTANCE} A): duplicated coordinates; fix or "
                                   "remove that frame")


class DeepmdSystem:
    """All frames of one system in memory, with types in the model's ``type_map``.

    Attributes: ``path``, ``natoms``, ``nframes``, ``atype [natoms]`` (model indices, sorted),
    ``sort_idx`` (file atom index of each sorted atom), ``pbc``,
    ``coord [nf, natoms, 3]``, ``box [nf, 3, 3]`` (zeros when not periodic) and ``labels`` (name
    -> array, only those present: ``energy [nf]``, ``force [nf, natoms, 3]``, ``virial [nf, 9]``,
    ``atom_ener [nf, natoms]``).
    """

    def __init__(self, path, type_map=None, set_prefix="set", sel_type=None):
        """``sel_type``: the model's tensor types (a dipole/polar model), so that atomic tensor
        labels stored for those atoms only (DeePMD-kit 2.x: ``atomic_dipole.npy [nf, nsel *
        3]``) are read too; they are expanded to every atom, zeros elsewhere."""
        self.path = path
        d = _Dir(path)
        if not d.exists("type.raw"):
            raise DPKerasError(f"{path}: type.raw is missing; not a DeePMD-kit system")
        atype = d.read_raw("type.raw", int)
        if atype.size == 0:
            raise DPKerasError(f"{path}/type.raw is empty: it must list the type of every atom "
                               "(one integer per atom)")
        sys_map = [str(e) for e in d.read_raw("type_map.raw", str)] \
            if d.exists("type_map.raw") else None
        self.natoms = len(atype)
        self.pbc = not d.exists("nopbc")
        self.atype = self._remap(atype, sys_map, type_map)
        sets = d.sets(set_prefix)
        if not sets:
            raise DPKerasError(f"{path}: no {set_prefix}.* directories with frames")
        coords, boxes, labels = [], [], {k: [] for k in LABELS}
        for s in sets:
            where = f"{path}/{s}"
            c = d.load(s, "coord")
            if c is None:
                raise DPKerasError(f"{where}/coord.npy is missing")
            nf = self._check(c, 3 * self.natoms, f"{where}/coord.npy")
            _check_finite(c, f"{where}/coord.npy", self.natoms)
            coords.append(c.reshape(nf, self.natoms, 3))
            if self.pbc:
                b = d.load(s, "box")
                if b is None:
                    raise DPKerasError(f"{where}/box.npy is missing (add it, or add an empty "
                                       f"file {path}/nopbc for a non-periodic system)")
                self._check(b, 9, f"{where}/box.npy", nf)
                _check_finite(b, f"{where}/box.npy")
                boxes.append(b.reshape(nf, 3, 3))
            else:
                boxes.append(np.zeros((nf, 3, 3)))
            for name, (per_atom, k) in LABELS.items():
                v = d.load(s, name)
                if v is not None:
                    if v.ndim == 1:
                        v = v.reshape(-1, 1)
                    n = self.natoms if per_atom else 1
                    if k is None and v.ndim == 2:   # fparam / aparam: any number of components
                        k = max(1, v.shape[1] // n)
                    if name.startswith("atomic_") and v.ndim == 2 and v.shape[1] != k * n:
                        v = self._expand_sel(v, k, sel_type, f"{where}/{name}.npy")
                    self._check(v, k * n, f"{where}/{name}.npy", nf)
                    _check_finite(v, f"{where}/{name}.npy", self.natoms if per_atom else None)
                    labels[name].append(v.reshape(nf, -1))
                elif labels[name]:
                    raise DPKerasError(f"{where}/{name}.npy is missing while other sets of "
                                       f"{path} have it")
        # sort atoms by type (stable); every per-atom array follows
        self.sort_idx = np.argsort(self.atype, kind="stable")
        self.atype = self.atype[self.sort_idx]
        self.coord = np.concatenate(coords).astype(np.float64)[:, self.sort_idx]
        self.box = np.concatenate(boxes).astype(np.float64)
        self.nframes = len(self.coord)
        self.labels = {}
        for name, parts in labels.items():
            if not parts:
                continue
            if len(parts) != len(sets):
                raise DPKerasError(f"{path}: {name}.npy is present in some sets only")
            v = np.concatenate(parts).astype(np.float64)
            if len({p.shape[1] for p in parts}) != 1:
                raise DPKerasError(f"{path}: {name}.npy has different widths in different sets")
            if name == "energy":
                v = v[:, 0]
            elif name == "atom_ener":
                v = v[:, self.sort_idx]
            elif LABELS[name][0]:
                v = v.reshape(self.nframes, self.natoms, -1)[:, self.sort_idx]
            self.labels[name] = v
        if self.pbc:
            vol = np.abs(np.linalg.det(self.box))
            bad = np.where(vol < 1e-8)[0]
            if len(bad):
                raise DPKerasError(f"{path}: frame {bad[0]} has a singular box (volume "
                                   f"{vol[bad[0]]:.3g}); fix box.npy or mark the system nopbc")
        _check_overlaps(self)

    def _expand_sel(self, v, k, sel_type, where):
        """``[nf, nsel * k]`` labels of the ``sel_type`` atoms (in file order) -> ``[nf,
        natoms * k]`` with zeros on the other atoms; other widths are left to the shape check."""
        sel = np.isin(self.atype, sel_type if sel_type is not None else [])
        nsel = int(sel.sum())
        if sel_type is None or v.shape[1] != k * nsel:
            if sel_type is None and v.shape[1] % k == 0 and v.shape[1] < k * self.natoms:
                raise DPKerasError(f"{where}: {v.shape[1] // k} atoms' labels for "
                                   f"{self.natoms} atoms: labels of the sel_type atoms only can "
                                   "be read for a model with a sel_type (a dipole/polar fitting)")
            return v
        out = np.zeros((v.shape[0], self.natoms, k), v.dtype)
        out[:, sel] = v.reshape(v.shape[0], nsel, k)
        return out.reshape(v.shape[0], -1)

    def _remap(self, atype, sys_map, type_map):
        if type_map is None:
            return atype.astype(np.int32)
        if sys_map is None:
            if atype.max(initial=0) >= len(type_map):
                raise DPKerasError(f"{self.path}: type.raw uses type {atype.max()} but the "
                                   f"model's type_map has {len(type_map)} elements; add "
                                   "type_map.raw to the system")
            return atype.astype(np.int32)
        if atype.max(initial=0) >= len(sys_map):
            raise DPKerasError(f"{self.path}: type.raw uses type {atype.max()} but "
                               f"type_map.raw lists only {sys_map}")
        missing = sorted(set(sys_map[t] for t in set(atype.tolist())) - set(type_map))
        if missing:
            raise DPKerasError(f"{self.path}: element(s) {missing} are not in the model's "
                               f"type_map {list(type_map)}; add them to model.type_map")
        lookup = np.array([type_map.index(e) if e in type_map else -1 for e in sys_map])
        return lookup[atype].astype(np.int32)

    @staticmethod
    def _check(arr, width, where, nframes=None):
        if arr.ndim == 1 and width == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != width:
            raise DPKerasError(f"{where}: wrong shape {arr.shape}, expected "
                               f"({nframes if nframes else 'nframes'}, {width})")
        if nframes is not None and arr.shape[0] != nframes:
            raise DPKerasError(f"{where}: {arr.shape[0]} frames but coord.npy has {nframes}")
        return arr.shape[0]

    def type_counts(self, ntypes):
        """Atoms per type ``[ntypes]``."""
        return np.bincount(self.atype, minlength=ntypes)


def write_frames(src, dst, frames):
    """Copy the frames ``frames`` (indices into all sets, in order) of the npy system ``src`` to
    a new one-set npy system ``dst`` (``type.raw``, ``type_map.raw`` and ``nopbc`` kept);
    returns the number of frames written."""
    import shutil

    sets = sorted(d for d in os.listdir(src) if d.startswith("set."))
    if not sets:
        raise DPKerasError(f"{src}: no set.* directories")
    os.makedirs(os.path.join(dst, "set.000"), exist_ok=True)
    for f in ("type.raw", "type_map.raw", "nopbc"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), dst)
    names = {f for s in sets for f in os.listdir(os.path.join(src, s)) if f.endswith(".npy")}
    frames = np.asarray(frames, dtype=int)
    for name in sorted(names):
        arr = np.concatenate([np.load(os.path.join(src, s, name)) for s in sets])
        np.save(os.path.join(dst, "set.000", name), arr[frames])
    return len(frames)
