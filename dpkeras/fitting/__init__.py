"""Fitting nets, registered under DeePMD-kit's ``fitting_net.type`` names."""

from dpkeras.fitting.ener import EnerFitting

FITTINGS = {"ener": EnerFitting}
