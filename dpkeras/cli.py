"""Shared command-line plumbing: quiet TensorFlow, logging setup, one-line error reporting.

Importing this module (every ``python -m dpkeras.*`` command does, first) hides TensorFlow's
C++ start-up noise on a CPU machine (``oneDNN custom operations are on``, ``Could not find cuda
drivers``, ``failed call to cuInit: ... CUDA error``, which reads like a failure but is not)
unless the user set ``TF_CPP_MIN_LOG_LEVEL`` or passes ``--log_level=DEBUG``. Our own log
(``[dpkeras] ...``) is unaffected.
"""

import contextlib
import logging
import os
import sys


def _wants_tf_logs():
    return "TF_CPP_MIN_LOG_LEVEL" in os.environ or any(
        a.lower() in ("--log_level=debug", "-log_level=debug") for a in sys.argv) or (
        "--log_level" in sys.argv and sys.argv[sys.argv.index("--log_level") + 1:][:1] in
        (["DEBUG"], ["debug"]))


@contextlib.contextmanager
def _stderr_to_devnull():
    """fd 2 to /dev/null for the duration (C++ writes below Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def quiet_tensorflow():
    """Import TensorFlow and probe its devices with the C++ start-up log hidden; later C++
    INFO/WARNING lines are hidden too (``TF_CPP_MIN_LOG_LEVEL=2``)."""
    if "tensorflow" in sys.modules or _wants_tf_logs():
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with _stderr_to_devnull():
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()   # where cuInit complains on a CPU machine
        except Exception:   # noqa: BLE001  (re-raised, visibly, by the command's own import)
            pass


quiet_tensorflow()


def setup_logging(level="INFO"):
    logger = logging.getLogger("dpkeras")
    logger.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in logger.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("[dpkeras] %(message)s"))
        logger.addHandler(h)
    logger.propagate = False
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # TF's own INFO chatter
    return logger


def run_main(main):
    """Run an absl ``main``; a :class:`DPKerasError` becomes one line on stderr and exit 1."""
    from absl import app

    from dpkeras.errors import DPKerasError

    def wrapped(argv):
        try:
            return main(argv)
        except DPKerasError as exc:
            print(f"dpkeras: error: {exc}", file=sys.stderr)
            sys.exit(1)

    app.run(wrapped)


def define_log_level():
    """Define the ``--log_level`` flag every command has, once per process (several command
    modules may be imported together)."""
    from absl import flags

    if "log_level" not in flags.FLAGS:
        flags.DEFINE_string("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR")
