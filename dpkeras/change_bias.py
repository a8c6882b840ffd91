"""Energy-bias recalibration of a trained model, and ``python -m dpkeras.change_bias``.

DeePMD-kit's ``change-by-statistic``: predict the energies of (up to ``ntest``) frames of every
system with the model, solve ``counts @ delta = E_label - E_pred`` in the least-squares
(minimum-norm) sense, ``counts [nframes, ntypes]`` being the atoms of each type per frame, and
add ``delta`` to ``bias_atom_e``. ``set-by-statistic`` sets ``bias_atom_e = lstsq(counts,
E_label)`` from the data alone. Only the bias changes, so forces and virials are unchanged.

Command line (as ``dp change-bias``)::

    python -m dpkeras.change_bias MODEL -s SYSTEM [-s SYSTEM ...] [-m change|set] [-n NTEST] -o OUT

``MODEL``: any model dpkeras loads; ``SYSTEM``: a DeePMD-kit system or a directory searched for
systems; ``-n``: frames per system (0, the default as in DeePMD-kit, = all); ``OUT``: a
SavedModel directory, ``.keras`` or ``.dp``.
"""

import logging
import weakref

import numpy as np

from dpkeras.errors import DPKerasError
from dpkeras.stat import bias_frames, fit_bias

log = logging.getLogger("dpkeras")

_EVALUATORS = weakref.WeakKeyDictionary()
MODES = {"change": "change-by-statistic", "set": "set-by-statistic"}


def predict(model, coord, box, atype, atomic=False):
    """Evaluate ``model`` on frames of one composition.

    ``coord [nf, nat, 3]`` A, ``box [nf, 3, 3]`` or ``None`` (no PBC), ``atype [nat]`` in the
    model's types. Returns the output dict (``energy [nf, 1]``, ``force [nf, nat, 3]``, ...).
    """
    from dpkeras.serving import SortedEvaluator

    ev = _EVALUATORS.get(model)
    if ev is None:   # one evaluator per model: its compiled functions are reused
        ev = _EVALUATORS[model] = SortedEvaluator(model, jit_compile=False)
    coord = np.asarray(coord, np.float64)
    pbc = box is not None
    box = np.zeros((coord.shape[0], 3, 3)) if box is None else np.asarray(box, np.float64)
    return ev(coord, np.asarray(atype, np.int32), box.reshape(-1, 3, 3), pbc, atomic=atomic)


def samples_from_data(data, ntest, seed):
    """The frames :func:`recalibrate` uses: a list of ``{"coord", "box" (or None), "atype",
    "energy", "path"}``, one per system (see :func:`dpkeras.stat.bias_frames`)."""
    out = []
    for k, frames in bias_frames(data, ntest, seed):
        s = data.systems[k]
        out.append({"coord": s.coord[frames], "box": s.box[frames] if s.pbc else None,
                    "atype": s.atype, "energy": s.labels["energy"][frames], "path": s.path})
    return out


def recalibrate(model, samples, mode="change-by-statistic"):
    """Recalibrate ``model.fitting.bias_atom_e`` in place from ``samples`` (see
    :func:`samples_from_data`); returns ``(old_bias, new_bias, rmse_ae)``."""
    ntypes = model.get_ntypes()
    counts, energy, pred = [], [], []
    for smp in samples:
        nf = len(smp["energy"])
        counts.append(np.tile(np.bincount(smp["atype"], minlength=ntypes)[None], (nf, 1)))
        energy.append(np.asarray(smp["energy"]).reshape(-1))
        if mode == "change-by-statistic":
            pred.append(predict(model, smp["coord"], smp["box"], smp["atype"])["energy"]
                        .reshape(-1))
    old = model.fitting.bias_atom_e.numpy().copy()
    new, rmse_ae = fit_bias(np.concatenate(counts), np.concatenate(energy), old,
                            np.concatenate(pred) if pred else None, mode)
    model.fitting.bias_atom_e.assign(new)
    if mode == "change-by-statistic":
        log.info("RMSE of atomic energy after linear regression: %.6g eV/atom", rmse_ae)
    log.info("%s: energy bias of %s changed from %s to %s", mode, model.get_type_map(),
             np.array2string(old, precision=8), np.array2string(new, precision=8))
    return old, new, rmse_ae


def change_bias(model_path, systems, mode="change", ntest=0, seed=0, output=None):
    """Load ``model_path``, recalibrate its bias on ``systems`` and save it to ``output``
    (SavedModel directory, ``.keras`` or ``.dp``). Returns the model."""
    from dpkeras.data.pipeline import DataSystems
    from dpkeras.export import save_model
    from dpkeras.load import load_model

    if mode not in MODES:
        raise DPKerasError(f"-m {mode}: unknown mode; use 'change' or 'set'")
    if output is None:
        raise DPKerasError("give the output model with -o OUT (a SavedModel directory, "
                           "OUT.keras or OUT.dp)")
    if output.endswith(".pb"):
        raise DPKerasError(f"-o {output}: dpkeras does not write TensorFlow frozen graphs; "
                           "write a SavedModel directory, a .keras or a .dp file")
    from dpkeras.data.system import find_systems

    model, _ = load_model(model_path)
    data = DataSystems({"systems": find_systems(systems), "batch_size": 1}, model.get_type_map(),
                       "-s")
    recalibrate(model, samples_from_data(data, ntest, seed), MODES[mode])
    save_model(model, output)
    log.info("wrote %s", output)
    return model


def main(argv):
    from dpkeras import cli

    cli.setup_logging(FLAGS.log_level)
    if len(argv) != 2:
        raise DPKerasError("usage: python -m dpkeras.change_bias MODEL -s SYSTEM [-s ...] "
                           "[-m change|set] [-n NTEST] -o OUT")
    if not FLAGS.system:
        raise DPKerasError("give at least one data system with -s SYSTEM")
    change_bias(argv[1], FLAGS.system, FLAGS.mode, FLAGS.numb_test, FLAGS.seed, FLAGS.output)


if __name__ == "__main__":
    from absl import flags

    from dpkeras import cli

    FLAGS = flags.FLAGS
    flags.DEFINE_multi_string("system", None, "data system(s), or directories holding them",
                              short_name="s")
    flags.DEFINE_enum("mode", "change", list(MODES), "change: least squares on the prediction "
                      "errors (change-by-statistic); set: from the data alone", short_name="m")
    flags.DEFINE_integer("numb_test", 0, "frames per system (0 = all)", short_name="n")
    flags.DEFINE_string("output", None, "output model (SavedModel dir, .keras or .dp)",
                        short_name="o")
    flags.DEFINE_integer("seed", 0, "seed of the frame choice when -n is below a system's size")
    cli.define_log_level()
    cli.run_main(main)
