"""Descriptors, registered under every name DeePMD-kit users write in ``input.json``."""

from dpkeras.descriptor.se_e2_a import DescrptSeA
from dpkeras.descriptor.se_e2_r import DescrptSeR
from dpkeras.descriptor.se_e3 import DescrptSeT
from dpkeras.descriptor.hybrid import DescrptHybrid
from dpkeras.descriptor.se_atten import DescrptSeAtten, DescrptSeAttenV2

DESCRIPTORS = {"se_e2_a": DescrptSeA, "se_a": DescrptSeA, "se_e2_r": DescrptSeR,
               "se_r": DescrptSeR, "se_e3": DescrptSeT, "se_t": DescrptSeT,
               "se_a_3be": DescrptSeT, "se_atten": DescrptSeAtten, "dpa1": DescrptSeAtten,
               "se_atten_v2": DescrptSeAttenV2, "hybrid": DescrptHybrid}
