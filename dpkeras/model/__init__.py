"""Models: descriptor + fitting assembled into Keras models."""

from dpkeras.model.ener import EnergyModel
from dpkeras.model.tensor import TensorModel

__all__ = ["EnergyModel", "TensorModel"]
