"""Multi-task models (DeePMD-kit's multi-task mode): one shared descriptor, one fitting net
("head") per dataset. Their input is normalized by :mod:`dpkeras.config.multitask`, they train
in :class:`dpkeras.trainer.Trainer` and load with :func:`dpkeras.load.load`. See
``docs/multitask.md``."""

from dpkeras.multitask.model import MultiTaskModel

__all__ = ["MultiTaskModel"]
