"""The HDF5 container of a ``.dp`` file: the root attribute ``json`` holds the dict, every
array under an ``@variables`` key is a root dataset named by its path."""

import json
import os

import numpy as np

from dpkeras.atomic import atomic_file
from dpkeras.errors import DPKerasError


# --- HDF5 container --------------------------------------------------------------------------
def load_dict(path):
    """The serialized dict of a ``.dp`` file with arrays resolved."""
    import h5py

    if not os.path.isfile(path):
        raise DPKerasError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            tree = json.loads(f.attrs["json"])

            def resolve(node, in_vars=False):
                if isinstance(node, dict):
                    return {k: resolve(v, in_vars or k == "@variables") for k, v in node.items()}
                if isinstance(node, list):
                    return [resolve(v, in_vars) for v in node]
                if in_vars and isinstance(node, str):
                    return np.asarray(f[node][()])
                return node

            return resolve(tree)
    except (OSError, KeyError, ValueError) as exc:
        raise DPKerasError(f"{path}: not a readable DeePMD-kit .dp file ({exc}); the file is "
                           "corrupt or truncated") from None


def save_dict(path, data):
    """Write a serialized dict as a ``.dp`` file (atomically)."""
    import h5py

    counter = [0]
    arrays = {}

    def flatten(node, in_vars=False):
        if isinstance(node, dict):
            return {k: flatten(v, in_vars or k == "@variables") for k, v in node.items()}
        if isinstance(node, list):
            return [flatten(v, in_vars) for v in node]
        if in_vars and node is not None:
            name = "/variable_%04d" % counter[0]
            counter[0] += 1
            arrays[name] = np.asarray(node)
            return name
        return node

    tree = flatten(data)
    with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
        for name, arr in arrays.items():
            f.create_dataset(name, data=arr)
        f.attrs["json"] = json.dumps(tree, separators=(",", ":"))
