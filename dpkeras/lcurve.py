"""``lcurve.out``, DeePMD-kit's learning-curve file, and the training log."""

import logging
import os

from dpkeras.atomic import atomic_write_text

log = logging.getLogger("dpkeras")


class LCurve:
    """``lcurve.out`` in DeePMD-kit's format; on restart, lines after the restored step are
    dropped so the file continues exactly. ``label(name, "val" | "trn")``: a column's header
    (default ``f"{name}_{kind}"``)."""

    def __init__(self, path, names, has_valid, start_step, label=None):
        self.names, self.has_valid = names, has_valid
        if start_step > 0 and os.path.exists(path):
            with open(path) as f:
                lines = f.readlines()
            kept = [ln for ln in lines if ln.startswith("#") or
                    (ln.split() and int(ln.split()[0]) <= start_step)]
            atomic_write_text(path, "".join(kept))
            self.f = open(path, "a")
        else:
            self.f = open(path, "w")
            head = "%-7s" % "# step"
            label = label or (lambda k, kind: f"{k}_{kind}")
            for k in names:
                head += ("   %11s %11s" % (label(k, "val"), label(k, "trn"))) if has_valid \
                    else ("   %11s" % label(k, "trn"))
            head += "   %-8s\n" % "lr"
            self.f.write(head)
            self.f.write("# If there is no available reference data, rmse_*_{val,trn} will "
                         "print nan\n")
            self.f.flush()

    def write(self, step, valid, train, lr):
        line = "%7d" % step
        for k in self.names:
            trn = float(train[k])
            if self.has_valid:
                line += "   %11.2e %11.2e" % (valid[k], trn)
            else:
                line += "   %11.2e" % trn
        line += "   %8.1e\n" % lr
        self.f.write(line)
        self.f.flush()

    def close(self):
        self.f.close()


def fmt_time(sec):
    sec = int(sec)
    return f"{sec // 3600:d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


def add_file_log(path):
    for h in log.handlers:
        if isinstance(h, logging.FileHandler) and h.baseFilename == os.path.abspath(path):
            return
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(h)
