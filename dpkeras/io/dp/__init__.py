"""DeePMD-kit's backend-neutral ``.dp`` model file (read and write):
:mod:`~dpkeras.io.dp.h5` (the HDF5 container), :mod:`~dpkeras.io.dp.model` (the envelope).

A ``.dp`` file is HDF5: the root attribute ``json`` holds DeePMD-kit's versioned ``serialize()``
dict, and every array under an ``@variables`` key is replaced by the path of a root dataset. The
dict of each kind is written and read by the kind itself (``serialize()`` / ``from_serialized``
on the descriptor and fitting classes; layouts in ``docs/deepmd_serialize.md``: ``se_e2_a``,
``se_e2_r``/``se_r``, ``se_e3``, ``dpa1`` = TF ``se_atten`` in concat or strip mode, ``hybrid``
of the per-type kinds; ``ener`` and ``dipole`` fittings). Files written here are what
DeePMD-kit's TF backend serializes for the same model; they convert with ``dp convert-backend
model.dp model.pb`` and evaluate identically in DeePMD-kit. ``smooth_type_embedding``
(``se_atten_v2``) is refused both ways, as DeePMD-kit's TF backend cannot serialize it either.
"""

from dpkeras.io.dp.h5 import load_dict, save_dict
from dpkeras.io.dp.model import read_dp, write_dp

__all__ = ["load_dict", "read_dp", "save_dict", "write_dp"]
