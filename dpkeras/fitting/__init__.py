"""Fitting nets, registered under DeePMD-kit's ``fitting_net.type`` names."""

from dpkeras.fitting.ener import EnerFitting
from dpkeras.fitting.tensor import DipoleFitting, PolarFitting

FITTINGS = {"ener": EnerFitting, "dipole": DipoleFitting, "polar": PolarFitting}
TENSOR_FITTINGS = ("dipole", "polar")
