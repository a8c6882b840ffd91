"""TensorFlow Datasets builder for DeePMD-kit systems (``tfds.load("deepmd_systems", ...)``).

Importing this package registers the builder with TFDS::

    import tensorflow_datasets as tfds
    import dpkeras.tfds  # noqa: F401  (registers "deepmd_systems")

    ds = tfds.load("deepmd_systems", split="train", data_dir="/tmp/tfds",
                   builder_kwargs={"systems": {"train": ["water/data_0", "water/data_1"],
                                               "validation": ["water/data_3"]},
                                   "type_map": ["O", "H"]})

See :class:`DeepmdSystems` for the features. The dataset is generated once per distinct set of
systems into ``data_dir`` and read from there afterwards.
"""

from dpkeras.tfds.deepmd_systems import DeepmdSystems

__all__ = ["DeepmdSystems"]
