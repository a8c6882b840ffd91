"""A training run's output directory: one writer at a time, and no run silently replaces
another.

:class:`RunDir` is held for the whole run. It takes an exclusive ``fcntl`` lock on
``.dpkeras.lock`` in the directory (a second training into it is refused at once, naming the
holder's pid) and refuses a directory that holds another run's checkpoints unless the run
continues it (``--restart`` of that directory) or replaces it (``--overwrite``: the old
``checkpoints/`` and learning curve are removed only then, once the new run has been accepted).
A refused run changes nothing in the directory but the (empty) lock file it tried; the lock file
is never removed, so two processes can never hold two different locks on it.
"""

import fcntl
import os
import shutil

from dpkeras import checkpoint
from dpkeras.errors import DPKerasError

LOCK = ".dpkeras.lock"


def _same_run(restart, output_dir):
    """Whether ``--restart`` names ``output_dir`` (the run directory or one of its
    checkpoints)."""
    if restart is None:
        return False
    r, o = os.path.realpath(restart), os.path.realpath(output_dir)
    return r == o or os.path.dirname(os.path.dirname(r)) == o


class RunDir:
    """Context manager: ``with RunDir(output_dir, restart, overwrite, disp_file): ...``."""

    def __init__(self, path, restart=None, overwrite=False, disp_file="lcurve.out"):
        self.path, self.restart, self.overwrite = path, restart, overwrite
        self.disp_file = disp_file
        self._fd = None

    def __enter__(self):
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise DPKerasError(f"{self.path}: cannot create the output directory ({exc}); "
                               "choose another --output_dir") from None
        lock = os.path.join(self.path, LOCK)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DPKerasError(f"{self.path}: another training (pid {holder}) is writing to "
                               "this directory; wait for it to finish or choose another "
                               "--output_dir") from None
        self._fd = fd
        try:
            self._accept()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return self

    def _accept(self):
        steps = sorted(checkpoint.list_steps(self.path))
        lcurve = os.path.join(self.path, self.disp_file)
        if not steps and not os.path.exists(lcurve) or _same_run(self.restart, self.path):
            return
        held = f"checkpoints {', '.join(f'ckpt-{s}' for s in steps)}" if steps else \
            f"{self.disp_file}"
        if not self.overwrite:
            raise DPKerasError(f"{self.path} holds another run ({held}); continue it with "
                               f"--restart={self.path}, replace it with --overwrite, or choose "
                               "another --output_dir")
        shutil.rmtree(os.path.join(self.path, checkpoint.CKPT_DIR), ignore_errors=True)
        if os.path.exists(lcurve):
            os.remove(lcurve)

    def __exit__(self, *exc):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        return False
