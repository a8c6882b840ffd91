"""Shared command-line plumbing: logging setup and one-line error reporting."""

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
