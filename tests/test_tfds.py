"""The deepmd_systems TFDS builder: tfds.load round trip against the npy files."""

import os

import numpy as np
import tensorflow_datasets as tfds

import dpkeras.tfds  # noqa: F401  (registers "deepmd_systems")
from conftest import NOPBC, WATER


def _npy(system):
    d = os.path.join(system, "set.000")
    return {k[:-4]: np.load(os.path.join(d, k)) for k in os.listdir(d)}


def test_tfds_load_round_trip(tmp_path):
    type_map = ["O", "H", "C"]
    systems = {"train": [WATER[0]], "validation": [NOPBC[2]]}
    splits = tfds.load("deepmd_systems", split=["train", "validation"], data_dir=str(tmp_path),
                       builder_kwargs={"systems": systems, "type_map": type_map})
    for split, ds in zip(("train", "validation"), splits):
        system = systems[split][0]
        ref = _npy(system)
        sys_map = open(os.path.join(system, "type_map.raw")).read().split()
        raw = np.loadtxt(os.path.join(system, "type.raw"), dtype=int)
        atype = np.array([type_map.index(sys_map[t]) for t in raw])
        seen = set()
        for ex in tfds.as_numpy(ds):
            i = int(ex["frame"])
            seen.add(i)
            assert ex["system"].decode() == os.path.abspath(system)
            assert ex["coord"].dtype == np.float64
            np.testing.assert_array_equal(ex["coord"], ref["coord"][i].reshape(-1, 3))
            np.testing.assert_array_equal(ex["force"], ref["force"][i].reshape(-1, 3))
            assert ex["energy"] == ref["energy"][i]
            np.testing.assert_array_equal(ex["atype"], atype)
            if "box" in ref and not os.path.exists(os.path.join(system, "nopbc")):
                assert ex["pbc"]
                np.testing.assert_array_equal(ex["box"], ref["box"][i].reshape(3, 3))
            else:
                assert not ex["pbc"] and not ex["box"].any()
            assert ex["find_energy"] == 1.0 and ex["find_force"] == 1.0
            assert ex["find_virial"] == 0.0
        assert seen == set(range(len(ref["coord"])))
    # a second load reads the generated files (same config name) instead of regenerating
    again = tfds.builder("deepmd_systems", data_dir=str(tmp_path), systems=systems,
                         type_map=type_map)
    assert again.is_prepared()
    assert again.info.metadata["type_map"] == type_map
    assert again.info.splits["train"].num_examples == len(_npy(WATER[0])["coord"])
