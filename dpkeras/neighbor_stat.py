"""``python -m dpkeras.neighbor_stat --system=S [--system=...] --rcut=R --type_map=O,H
[--mixed_type]``: DeePMD-kit's ``dp neighbor-stat``.

Prints ``min_nbor_dist`` (the smallest distance between two atoms, any types, minimum image under
PBC) and ``max_nbor_size`` (per neighbor type, the largest number of neighbors of that type
within ``rcut`` of any atom; one number of all types with ``--mixed_type``), over every frame of
every system found under the ``--system`` paths (directories holding ``type.raw``, searched
recursively, or HDF5 ``file.h5#/group``). These are the numbers ``sel: "auto"`` and ``dp compress``
use.
"""

import numpy as np
from absl import flags

from dpkeras import cli

FLAGS = flags.FLAGS


def neighbor_stat(systems, rcut, type_map, mixed_type=False):
    """``(min_nbor_dist, max_nbor_size [ntypes or 1])`` of the systems under the paths
    ``systems`` (see the module docstring)."""
    from dpkeras.data.pipeline import DataSystems
    from dpkeras.data.system import find_systems
    from dpkeras.stat import neighbor_stat as stat

    data = DataSystems({"systems": find_systems(systems), "batch_size": 1}, type_map, "--system")
    ngroups = 1 if mixed_type else len(type_map)
    count, min_dist = stat(data, rcut, [np.iinfo(np.int32).max] * ngroups, mixed_type)
    return float(min_dist), count


def _define_flags():
    flags.DEFINE_multi_string("system", None, "DeePMD-kit system(s), or directories of them")
    flags.DEFINE_float("rcut", 6.0, "cut-off radius (Angstrom)")
    flags.DEFINE_list("type_map", None, "element names, e.g. O,H")
    flags.DEFINE_bool("mixed_type", False, "count the neighbors of all types together (as "
                      "attention descriptors do)")
    cli.define_log_level()


def main(argv):
    del argv
    from dpkeras.errors import DPKerasError

    log = cli.setup_logging(FLAGS.log_level)
    if not FLAGS.system or not FLAGS.type_map:
        raise DPKerasError("give --system=S and --type_map=O,H")
    min_dist, count = neighbor_stat(FLAGS.system, FLAGS.rcut, FLAGS.type_map, FLAGS.mixed_type)
    log.info("min_nbor_dist: %f", min_dist)
    log.info("max_nbor_size: %s", np.array2string(count))
    print(f"min_nbor_dist: {min_dist:f}")
    print(f"max_nbor_size: {np.array2string(count)}")


if __name__ == "__main__":
    _define_flags()
    cli.run_main(main)
