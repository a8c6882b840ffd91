"""Models: descriptor + fitting assembled into Keras models."""

from dpkeras.model.ener import EnergyModel

__all__ = ["EnergyModel"]
