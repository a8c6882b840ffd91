"""Multi-task training (DeePMD-kit's multi-task mode): one shared descriptor, one fitting net
("head") per dataset, one head drawn per step. See ``docs/multitask.md``."""

from dpkeras.multitask.config import is_multitask, normalize_multitask
from dpkeras.multitask.model import MultiTaskModel

__all__ = ["MultiTaskModel", "is_multitask", "normalize_multitask"]
