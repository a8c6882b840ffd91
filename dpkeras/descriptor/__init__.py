"""Descriptors, registered under every name DeePMD-kit users write in ``input.json``
(:mod:`dpkeras.descriptor.registry`; importing this package registers them all)."""

from dpkeras.descriptor.hybrid import DescrptHybrid
from dpkeras.descriptor.registry import DESCRIPTORS
from dpkeras.descriptor.se_atten import DescrptSeAtten, DescrptSeAttenV2
from dpkeras.descriptor.se_e2_a import DescrptSeA
from dpkeras.descriptor.se_e2_r import DescrptSeR
from dpkeras.descriptor.se_e3 import DescrptSeT

__all__ = ["DESCRIPTORS", "DescrptHybrid", "DescrptSeA", "DescrptSeAtten", "DescrptSeAttenV2",
           "DescrptSeR", "DescrptSeT"]
