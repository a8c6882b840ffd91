"""Descriptors, registered under every name DeePMD-kit users write in ``input.json``."""

from dpkeras.descriptor.se_e2_a import DescrptSeA
from dpkeras.descriptor.se_e2_r import DescrptSeR

DESCRIPTORS = {"se_e2_a": DescrptSeA, "se_a": DescrptSeA, "se_e2_r": DescrptSeR, "se_r": DescrptSeR}
