"""Models: descriptor + fitting assembled into Keras models."""

from dpkeras.model.ener import EnergyModel
