"""Atomic writes: a file or directory appears complete under its final name, or not at all.

Everything dpkeras writes that a later run depends on (checkpoints, frozen models, ``.dp`` and
``.keras`` files, pointers) goes through here, so a process killed at any moment never leaves a
half-written file under a real name.
"""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary directory next to ``path``; on success it replaces ``path``."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-")
    try:
        yield tmp
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """Yield a temporary file name next to ``path`` (ending in ``suffix``, for writers that
    dispatch on it); on success it replaces ``path``."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (fsynced before the rename)."""
    with atomic_file(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
