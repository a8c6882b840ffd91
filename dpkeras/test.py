"""``python -m dpkeras.test --model M --system S [--numb_test N]``: errors like ``dp test``.

Prints, per system and averaged over systems weighted by frames, the energy RMSE/MAE (total and
per atom), force RMSE/MAE and virial RMSE/MAE (total and per atom) where labels exist. For a
dipole / polarizability model: the RMSE of the frame tensor (``dipole.npy`` /
``polarizability.npy``), also divided by sqrt(N) and N (N: atoms of the selected types), or, for
systems with atomic labels only, of the atomic tensors of the selected atoms, as ``dp test``.
"""

import logging

import numpy as np
from absl import flags

from dpkeras import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "model to test (any format DeepPot accepts)")
flags.DEFINE_multi_string("system", None, "DeePMD-kit system(s) to test on")
flags.DEFINE_integer("numb_test", 0, "frames per system (0 = all)")
cli.define_log_level()

log = logging.getLogger("dpkeras")


def test_system(dp, path, numb_test=0):
    """Error metrics of ``dp`` on one system: a dict of floats (and ``nframes``)."""
    from dpkeras.data.system import DeepmdSystem

    s = DeepmdSystem(path, dp.get_type_map(), sel_type=dp.get_sel_type() or None)
    n = s.nframes if not numb_test else min(numb_test, s.nframes)
    if hasattr(dp, "get_output_dim"):   # a DeepDipole / DeepPolar
        return _test_tensor(dp, s, n)
    e, f, v = dp.eval(s.coord[:n], s.box[:n] if s.pbc else None, s.atype)
    res = {"nframes": n, "natoms": s.natoms}

    def add(name, pred, label, per_atom=False):
        d = pred.reshape(n, -1) - label.reshape(n, -1)
        res[f"rmse_{name}"] = float(np.sqrt(np.mean(d * d)))
        res[f"mae_{name}"] = float(np.mean(np.abs(d)))
        if per_atom:
            res[f"rmse_{name}_atom"] = res[f"rmse_{name}"] / s.natoms
            res[f"mae_{name}_atom"] = res[f"mae_{name}"] / s.natoms

    if "energy" in s.labels:
        add("e", e, s.labels["energy"][:n], True)
    if "force" in s.labels:
        add("f", f, s.labels["force"][:n])
    if "virial" in s.labels:
        add("v", v, s.labels["virial"][:n], True)
    return res


def _test_tensor(dp, s, n):
    """``dp test`` for a DeepDipole / DeepPolar on the first ``n`` frames of system ``s``."""
    label = "dipole" if dp.get_output_dim() == 3 else "polarizability"
    box = s.box[:n] if s.pbc else None
    sel = np.isin(s.atype, dp.get_sel_type())
    nsel = int(sel.sum())
    res = {"nframes": n, "natoms": s.natoms, "tensor": label}
    if label in s.labels:
        d = dp.eval(s.coord[:n], box, s.atype, atomic=False) - s.labels[label][:n]
        res["rmse_t"] = float(np.sqrt(np.mean(d * d)))
        if nsel:
            res["rmse_t_sqrtn"] = res["rmse_t"] / np.sqrt(nsel)
            res["rmse_t_n"] = res["rmse_t"] / nsel
    elif "atomic_" + label in s.labels:
        d = (dp.eval(s.coord[:n], box, s.atype, atomic=True)
             - s.labels["atomic_" + label][:n])[:, sel]
        res["rmse_t"] = float(np.sqrt(np.mean(d * d)))
    return res


UNITS = {"e": "eV", "f": "eV/A", "v": "eV"}
NAMES = {"e": "Energy", "f": "Force", "v": "Virial"}
TENSOR_NAMES = {"dipole": "Dipole ", "polarizability": "Polarizability "}


def report(res):
    lines = [f"# number of test data : {res['nframes']:d}"]
    if "tensor" in res:
        name = TENSOR_NAMES[res["tensor"]]
        for key, what in (("rmse_t", "RMSE      "), ("rmse_t_sqrtn", "RMSE/sqrtN"),
                          ("rmse_t_n", "RMSE/N    ")):
            if key in res:
                lines.append(f"{name} {what} : {res[key]:e}")
        return "\n".join(lines)
    for k in ("e", "f", "v"):
        if f"rmse_{k}" not in res:
            continue
        lines.append(f"{NAMES[k]} MAE         : {res[f'mae_{k}']:e} {UNITS[k]}")
        lines.append(f"{NAMES[k]} RMSE        : {res[f'rmse_{k}']:e} {UNITS[k]}")
        if f"rmse_{k}_atom" in res:
            lines.append(f"{NAMES[k]} MAE/Natoms  : {res[f'mae_{k}_atom']:e} {UNITS[k]}")
            lines.append(f"{NAMES[k]} RMSE/Natoms : {res[f'rmse_{k}_atom']:e} {UNITS[k]}")
    return "\n".join(lines)


def main(argv):
    del argv
    from dpkeras.errors import DPKerasError
    from dpkeras.infer import DeepEval

    cli.setup_logging(FLAGS.log_level)
    if not FLAGS.model or not FLAGS.system:
        raise DPKerasError("give --model and at least one --system")
    from dpkeras.model.build import check_finite

    dp = DeepEval(FLAGS.model)
    check_finite(dp.model, FLAGS.model)
    all_res = []
    for path in FLAGS.system:
        res = test_system(dp, path, FLAGS.numb_test)
        print(f"# testing system : {path}")
        print(report(res))
        all_res.append(res)
    if len(all_res) > 1:
        total = sum(r["nframes"] for r in all_res)
        avg = {"nframes": total}
        if "tensor" in all_res[0]:   # RMSE/sqrtN and RMSE/N are per system only, as dp test
            avg["tensor"] = all_res[0]["tensor"]
        common = set.intersection(*[set(r) for r in all_res]) - {"rmse_t_sqrtn", "rmse_t_n"}
        for k in [k for k in all_res[0] if k in common]:
            if k.startswith("rmse"):
                avg[k] = float(np.sqrt(sum(r[k] ** 2 * r["nframes"] for r in all_res) / total))
            elif k.startswith("mae"):
                avg[k] = float(sum(r[k] * r["nframes"] for r in all_res) / total)
        print("# weighted average of errors")
        print(report(avg))


if __name__ == "__main__":
    cli.run_main(main)
