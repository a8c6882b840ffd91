"""On/off switches read from the environment (``DPKERAS_JIT_COMPILE``, ``DPKERAS_MALLOC_TUNE``):
one reading of their values, one error for a value that is neither."""

import os

from dpkeras.errors import DPKerasError

_VALUES = {"1": True, "true": True, "yes": True, "on": True,
           "0": False, "false": False, "no": False, "off": False}


def switch(name, on_means):
    """The switch ``$name`` (on when unset); ``on_means``: what 1 does, for the error
    message."""
    raw = os.environ.get(name, "1")
    value = _VALUES.get(raw.strip().lower())
    if value is None:
        raise DPKerasError(f"environment variable {name}={raw!r}: expected 1 ({on_means}, the "
                           "default) or 0")
    return value
