"""The C allocator's settings for training (glibc ``mallopt``): freed step buffers stay mapped.

A compiled training step allocates its temporary buffers (for the standard water se_e2_a step,
arrays of 17 MB and more: ``[21504, 100]`` float64) with ``malloc`` and frees them when the step
ends. With the batches coming from the ``tf.data`` pipeline, as in training, glibc hands many of
them back to the system on ``free`` (its per-thread arenas' heaps are at most 64 MB; larger
blocks are ``mmap``'d and unmapped), so every step page-faults (and zeroes) its buffers again.
Measured on that step (2 cores): about 22,000-25,000 minor page faults (~100 MB) and 100-115 ms
per step by default, 40-130 faults and 76-80 ms with :func:`keep_freed_memory`, which raises
the mmap threshold and keeps a top pad of 512 MB on the heaps, so the next step reuses the pages
in place. The peak memory is unchanged (1.61 vs 1.64 GB for that run): freed pages are kept
instead of returned. (Batches made in the caller's thread fault ~300 times per step either way.)

The settings must be made before the threads' heaps exist (made after a model was built they
were measured to change nothing): :class:`Trainer <dpkeras.trainer.Trainer>` makes them when it
is constructed, before it reads data or builds a model. They are the process's (they apply to
whatever it allocates afterwards). Off with ``DPKERAS_MALLOC_TUNE=0``; left alone when the user
set glibc's own variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES``) or the C library is not glibc. Evaluation
(``DeepPot.eval``) was measured not to gain from them and does not make them.
"""

import ctypes
import ctypes.util
import logging
import os

from dpkeras import env

log = logging.getLogger(__name__)

ENV = "DPKERAS_MALLOC_TUNE"
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_",
                  "GLIBC_TUNABLES")
# glibc's mallopt parameters (malloc.h)
M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3
MMAP_THRESHOLD = 2 ** 31 - 1   # bytes: every buffer a step allocates comes from the heap
TOP_PAD = 512 * 2 ** 20        # bytes kept on the heap's top when it shrinks

_done = None


def keep_freed_memory():
    """Tune glibc's allocator as the module docstring says, once per process; returns whether
    the settings are in effect (``False``: switched off, the user's own settings, or not
    glibc)."""
    global _done
    if _done is not None:
        return _done
    on = env.switch(ENV, "tune the C allocator for training")
    _done = False
    if not on or any(v in os.environ for v in USER_VARIABLES):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version   # only glibc has it
    except (OSError, AttributeError):
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TOP_PAD, TOP_PAD))
    if _done:
        log.debug("glibc malloc: mmap threshold %d B, top pad %d B", MMAP_THRESHOLD, TOP_PAD)
    return _done
