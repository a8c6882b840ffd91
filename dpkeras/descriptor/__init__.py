"""Descriptors, registered under every name DeePMD-kit users write in ``input.json``."""

from dpkeras.descriptor.se_e2_a import DescrptSeA

DESCRIPTORS = {"se_e2_a": DescrptSeA, "se_a": DescrptSeA}
