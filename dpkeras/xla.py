"""Whether dpkeras compiles its training steps and evaluators with XLA when the caller does not
say (``jit_compile=None``).

XLA makes each step faster (docs/performance.md) at the cost of a compilation of seconds per
system composition, whose code stays in memory for the life of the process. Jobs that evaluate
many compositions a few times each (a test suite, ``dp test`` over many small systems) run faster
without it: set the environment variable ``DPKERAS_JIT_COMPILE=0``. An explicit
``jit_compile=True/False`` (``--jit_compile`` / ``--nojit_compile``) always wins.
"""

from dpkeras import env

ENV = "DPKERAS_JIT_COMPILE"


def jit_compile(requested=None):
    """``requested`` if it is True or False, else the default of ``$DPKERAS_JIT_COMPILE`` (on
    when unset)."""
    if requested is not None:
        return bool(requested)
    return env.switch(ENV, "compile with XLA")
