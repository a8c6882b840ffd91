"""The ``deepmd_systems`` TFDS builder: one example per frame of DeePMD-kit npy / HDF5 systems.

Features of an example (atoms in the order of the system's ``type.raw``; Angstrom, eV):

``coord``    ``[natoms, 3]`` float64
``atype``    ``[natoms]`` int32, indices into the dataset's ``type_map`` (metadata)
``box``      ``[3, 3]`` float64, cell vectors as rows (zeros for a non-periodic system)
``pbc``      bool
``energy``   float64 (0 when absent), ``force`` ``[natoms, 3]`` float64, ``virial`` ``[9]``
             float64; ``find_energy`` / ``find_force`` / ``find_virial`` are 1.0 where the system
             has the label (DeePMD-kit's convention), else 0.0
``system``   the system path as given, ``frame`` int64 its frame index

Systems are read with :class:`dpkeras.data.system.DeepmdSystem` (the trainer's reader), so
``type_map.raw`` remapping and the same input checks apply.
"""

import hashlib
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from dpkeras.errors import DPKerasError


class DeepmdSystemsConfig(tfds.core.BuilderConfig):
    """Which systems go into which split, and the type map (``None``: the first system's)."""

    def __init__(self, *, systems, type_map=None, **kwargs):
        if isinstance(systems, (list, tuple)):
            systems = {"train": list(systems)}
        if not isinstance(systems, dict) or not systems:
            raise DPKerasError("deepmd_systems: 'systems' must be a list of system paths or a "
                               "dict {split: [paths]}")
        self.systems = {k: [os.path.abspath(p) for p in v] for k, v in systems.items()}
        self.type_map = list(type_map) if type_map else None
        key = json.dumps([self.systems, self.type_map], sort_keys=True)
        kwargs.setdefault("name", "s" + hashlib.sha256(key.encode()).hexdigest()[:16])
        super().__init__(**kwargs)


class DeepmdSystems(tfds.core.GeneratorBasedBuilder):
    """TFDS builder over DeePMD-kit systems; pass ``systems=`` (and optionally ``type_map=``)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Frames of DeePMD-kit systems with energy/force/virial labels."}

    def __init__(self, *, systems=None, type_map=None, config=None, **kwargs):
        if config is None:
            if systems is None:
                raise DPKerasError("deepmd_systems: give builder_kwargs={'systems': [...]} (a "
                                   "list of DeePMD-kit system paths or {split: [paths]})")
            config = DeepmdSystemsConfig(systems=systems, type_map=type_map)
        super().__init__(config=config, **kwargs)

    def _type_map(self):
        if self.builder_config.type_map:
            return self.builder_config.type_map
        first = next(iter(self.builder_config.systems.values()))[0]
        path = os.path.join(first, "type_map.raw")
        if not os.path.isfile(path):
            raise DPKerasError(f"deepmd_systems: {path} is missing; pass type_map=[...]")
        with open(path) as f:
            return f.read().split()

    def _info(self):
        f = tfds.features
        return self.dataset_info_from_configs(
            description="Frames of DeePMD-kit systems (coordinates, types, box, labels).",
            features=f.FeaturesDict({
                "coord": f.Tensor(shape=(None, 3), dtype=np.float64),
                "atype": f.Tensor(shape=(None,), dtype=np.int32),
                "box": f.Tensor(shape=(3, 3), dtype=np.float64),
                "pbc": f.Scalar(dtype=np.bool_),
                "energy": f.Scalar(dtype=np.float64),
                "force": f.Tensor(shape=(None, 3), dtype=np.float64),
                "virial": f.Tensor(shape=(9,), dtype=np.float64),
                "find_energy": f.Scalar(dtype=np.float64),
                "find_force": f.Scalar(dtype=np.float64),
                "find_virial": f.Scalar(dtype=np.float64),
                "system": f.Text(),
                "frame": f.Scalar(dtype=np.int64),
            }),
            metadata=tfds.core.MetadataDict(type_map=self._type_map()),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {split: self._generate_examples(paths)
                for split, paths in self.builder_config.systems.items()}

    def _generate_examples(self, paths):
        from dpkeras.data.system import DeepmdSystem

        type_map = self._type_map()
        for path in paths:
            s = DeepmdSystem(path, type_map)
            unsort = np.argsort(s.sort_idx)       # back to the order of type.raw
            atype = s.atype[unsort]
            labels = s.labels
            for i in range(s.nframes):
                yield f"{path}#{i}", {
                    "coord": s.coord[i][unsort],
                    "atype": atype,
                    "box": s.box[i],
                    "pbc": s.pbc,
                    "energy": labels["energy"][i] if "energy" in labels else 0.0,
                    "force": labels["force"][i][unsort] if "force" in labels
                    else np.zeros((s.natoms, 3)),
                    "virial": labels["virial"][i] if "virial" in labels else np.zeros(9),
                    "find_energy": float("energy" in labels),
                    "find_force": float("force" in labels),
                    "find_virial": float("virial" in labels),
                    "system": path,
                    "frame": i,
                }
