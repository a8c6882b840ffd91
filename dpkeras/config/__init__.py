"""The one config schema of dpkeras: DeePMD-kit's ``input.json`` keys and defaults.

:func:`normalize` validates a user's ``input.json`` dict once, at the edge, and returns a copy
with every default filled in; builders take the normalized sections and never re-default.

- :mod:`dpkeras.config.schema`: the key tables (DeePMD-kit's keys and defaults) and how a table
  is applied (unknown keys, ``Unsupported`` keys);
- :mod:`dpkeras.config.model`: the ``model`` section (:func:`normalize_model`,
  :func:`model_kwargs`);
- :mod:`dpkeras.config.single`: a single-task input;
- :mod:`dpkeras.config.multitask`: a multi-task input, both of DeePMD-kit's styles.
"""

import json
import os

from dpkeras.config.model import auto_sel_factor, model_kwargs, normalize_model
from dpkeras.config.multitask import (
    DEFAULT_HEAD, SHARED_MODEL_KEYS, complete_from_frozen, is_multitask, is_multitask_input,
    normalize_multitask)
from dpkeras.config.schema import ATTENTION_DESCRIPTORS, Unsupported
from dpkeras.config.single import normalize_single
from dpkeras.errors import DPKerasError

__all__ = ["ATTENTION_DESCRIPTORS", "DEFAULT_HEAD", "SHARED_MODEL_KEYS", "Unsupported",
           "auto_sel_factor", "complete_from_frozen", "differences", "is_multitask",
           "is_multitask_input",
           "load_input", "model_kwargs", "normalize", "normalize_model", "read_input"]


def differences(a, b, path, ignore=()):
    """``[(key path, a value, b value)]`` where two (normalized) sections differ; keys in
    ``ignore`` are skipped at every level."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in ignore:
                out += differences(a.get(k, "(missing)"), b.get(k, "(missing)"), f"{path}.{k}",
                                   ignore)
        return out
    return [] if a == b else [(path, a, b)]


def normalize(config):
    """Validate a whole ``input.json`` dict; return a normalized copy (defaults filled). A
    multi-task input (``model.fitting_net_dict`` or ``model.model_dict``) is normalized by
    :func:`dpkeras.config.multitask.normalize_multitask`."""
    if is_multitask_input(config):
        return normalize_multitask(config)
    return normalize_single(config)


def read_input(path):
    """The raw dict of an ``input.json`` file (one clear error for a missing/invalid file)."""
    if os.path.isdir(path):
        raise DPKerasError(f"{path}: is a directory; give the input.json file inside it")
    if not os.path.isfile(path):
        raise DPKerasError(f"{path}: input file not found")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DPKerasError(f"{path}: not valid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DPKerasError(f"{path}: cannot read the input ({exc})") from None


def load_input(path):
    """Read and normalize an ``input.json`` file."""
    raw = read_input(path)
    try:
        return normalize(raw)
    except DPKerasError as exc:
        raise DPKerasError(str(exc).replace("input.json:", f"{path}:", 1)) from None
