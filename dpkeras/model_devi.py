"""``python -m dpkeras.model_devi --models=A,B,C --system=S [--output=model_devi.out]``: the
deviation between several models on the frames of a system, as ``dp model-devi``.

For ``n`` models, per frame (DeePMD-kit's ``calc_model_devi``):

* force deviation of atom ``i``: ``|std_k F_k,i|`` (``np.std`` over models, ddof 0, then the norm
  over x, y, z); ``max_devi_f``, ``min_devi_f``, ``avg_devi_f`` over the atoms (with
  ``--relative=L``: each divided by ``|mean_k F_k,i| + L``);
* virial deviation: ``std_k (V_k / natoms)`` per component; its max, min and ``avg_devi_v`` =
  norm / 3 (``--relative_v=L``: divided by ``|mean_k V_k / natoms| + L``);
* ``devi_e``: ``std_k (E_k / natoms)``.

The file has DeePMD-kit 3.2's layout (:func:`format_model_devi`): per system, ``# SYSTEM``, the
header ``# step      max_devi_v         ...`` and one line per frame, ``%12d`` then seven
``%19.6e``; with ``--atomic`` the per-atom force deviations follow. ``--system`` may name
directories of systems (searched for ``type.raw``), as ``dp model-devi -s``.
"""

import numpy as np
from absl import flags

from dpkeras import cli
from dpkeras.errors import DPKerasError

COLUMNS = ("step", "max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f",
           "avg_devi_f", "devi_e")


def calc_model_devi_f(forces, relative=None):
    """``forces [nmodels, nframes, natoms, 3]`` -> ``(max, min, avg [nframes], per atom
    [nframes, natoms])``."""
    devi = np.linalg.norm(np.std(forces, axis=0), axis=-1)
    if relative is not None:
        devi = devi / (np.linalg.norm(np.mean(forces, axis=0), axis=-1) + relative)
    return devi.max(axis=-1), devi.min(axis=-1), devi.mean(axis=-1), devi


def calc_model_devi_v(virials, relative=None):
    """``virials [nmodels, nframes, 9]`` (already per atom) -> ``(max, min, avg [nframes])``."""
    devi = np.std(virials, axis=0)
    if relative is not None:
        devi = devi / (np.abs(np.mean(virials, axis=0)) + relative)
    return devi.max(axis=-1), devi.min(axis=-1), np.linalg.norm(devi, axis=-1) / 3


def calc_model_devi(coord, box, atype, models, frequency=1, relative=None, relative_v=None,
                    atomic=False, fparam=None, aparam=None):
    """DeePMD-kit's ``calc_model_devi``: ``[nframes, 8]`` rows of :data:`COLUMNS` (``step`` =
    frame index x ``frequency``), plus ``[nframes, natoms]`` force deviations with ``atomic``.

    ``coord [nframes, natoms * 3]``, ``box [nframes, 9]`` or ``None``, ``atype [natoms]``;
    ``models``: loaded :class:`dpkeras.infer.DeepPot` objects (two or more)."""
    if len(models) < 2:
        raise DPKerasError(f"model deviation needs at least two models, got {len(models)}")
    atype = np.asarray(atype)
    natoms = atype.shape[-1]
    es, fs, vs = [], [], []
    for m in models:
        kw = {}
        if m.get_dim_fparam():
            kw["fparam"] = fparam
        if m.get_dim_aparam():
            kw["aparam"] = aparam
        e, f, v = m.eval(coord, box, atype, **kw)
        es.append(np.asarray(e).reshape(-1, 1) / natoms)
        fs.append(np.asarray(f).reshape(len(es[-1]), natoms, 3))
        vs.append(np.asarray(v).reshape(-1, 9) / natoms)
    vmax, vmin, vavg = calc_model_devi_v(np.array(vs), relative_v)
    fmax, fmin, favg, fatom = calc_model_devi_f(np.array(fs), relative)
    devi_e = np.std(np.array(es), axis=0)[:, 0]
    steps = np.arange(len(devi_e)) * frequency
    table = np.stack([steps, vmax, vmin, vavg, fmax, fmin, favg, devi_e], axis=1)
    return (table, fatom) if atomic else table


def format_model_devi(table, header="", atomic_devi=None):
    """One system's block of ``model_devi.out`` as DeePMD-kit 3.2's ``write_model_devi_out``
    writes it (``numpy.savetxt`` with a header): ``# HEADER`` (``dp model-devi`` puts the
    system's path there), ``# step`` and the column names left-justified in 10 and 19
    characters, then ``%12d`` and ``%19.6e`` per frame (with ``atomic_devi``, the per-atom force
    deviations after the seven columns)."""
    names = f"{COLUMNS[0]:10s}" + "".join(f"{c:19s}" for c in COLUMNS[1:])
    if atomic_devi is not None:
        names += f"{'atm_devi_f(N)':19s}"
    lines = [f"# {header}", f"# {names}"]
    for k, row in enumerate(table):
        line = "%12d" % int(row[0]) + "".join("%19.6e" % x for x in row[1:])
        if atomic_devi is not None:
            line += "".join("%19.6e" % x for x in atomic_devi[k])
        lines.append(line)
    return "\n".join(lines) + "\n"


def lammps_header(atomic=False):
    """The first line of the model-deviation file DeePMD-kit's LAMMPS plugin writes
    (``pair_style deepmd A B ... out_file F``): ``#`` and the names right-justified, ``step`` in
    11 characters and the six deviations in 19 (no ``devi_e`` there)."""
    names = "#" + f"{COLUMNS[0]:>11s}" + "".join(f"{c:>19s}" for c in COLUMNS[1:7])
    if atomic:
        names += f"{'atm_devi_f(N)':>19s}"
    return names + "\n"


def lammps_row(step, virial_devi, force_devi, atomic_devi=None):
    """One line of that file: the step in 12 characters, then ``max, min, avg`` of the virial
    deviation and of the force deviation (and, with ``atomic``, each atom's force deviation in
    tag order), each a space and ``%18.6e`` as C++'s ``setw(18) << scientific`` writes it."""
    vals = list(virial_devi) + list(force_devi) + list([] if atomic_devi is None else atomic_devi)
    return "%12d" % int(step) + "".join(" %18.6e" % x for x in vals) + "\n"


def write_model_devi_out(blocks, path):
    """Write ``model_devi.out``: ``blocks`` is ``[(header, table, atomic_devi or None)]``, one
    per system, in order (DeePMD-kit appends them to one file; here the file is written whole,
    atomically, and replaces an older one)."""
    from dpkeras.atomic import atomic_write_text

    atomic_write_text(path, "".join(format_model_devi(t, h, a) for h, t, a in blocks))


FLAGS = flags.FLAGS


def _define_flags():
    """The command's flags, defined only when it runs (other command modules define
    --output and --system too, and tests import them together)."""
    flags.DEFINE_list("models", None, "two or more models (any format DeepPot reads)")
    flags.DEFINE_multi_string("system", None, "DeePMD-kit system(s) to evaluate")
    flags.DEFINE_string("output", "model_devi.out", "output file (one block per system)")
    flags.DEFINE_integer("frequency", 1, "the step between frames written in the step column")
    flags.DEFINE_bool("atomic", False, "also write the per-atom force deviations")
    flags.DEFINE_float("relative", None, "relative force deviation with this level (eV/A)")
    flags.DEFINE_float("relative_v", None, "relative virial deviation with this level (eV)")
    cli.define_log_level()


def main(argv):
    del argv
    from dpkeras.data.system import DeepmdSystem
    from dpkeras.infer import DeepPot

    log = cli.setup_logging(FLAGS.log_level)
    if not FLAGS.models or not FLAGS.system:
        raise DPKerasError("give --models=A,B[,...] and --system=S")
    models = [DeepPot(p) for p in FLAGS.models]
    tmaps = {tuple(m.get_type_map()) for m in models}
    if len(tmaps) != 1:
        raise DPKerasError(f"the models have different type maps {sorted(tmaps)}")
    from dpkeras.data.system import find_systems

    blocks = []
    for path in find_systems(FLAGS.system):
        s = DeepmdSystem(path, models[0].get_type_map())
        coord = s.coord.reshape(s.nframes, -1)
        inv = np.argsort(s.sort_idx)   # report atoms in the system's own order
        table, atom = calc_model_devi(coord, s.box if s.pbc else None, s.atype, models,
                                      FLAGS.frequency, FLAGS.relative, FLAGS.relative_v,
                                      atomic=True)
        blocks.append((path, table, atom[:, inv] if FLAGS.atomic else None))
        log.info("%s: %d frames, max_devi_f up to %.3e eV/A", path, len(table),
                 float(table[:, 4].max()))
    write_model_devi_out(blocks, FLAGS.output)
    log.info("wrote %s", FLAGS.output)


if __name__ == "__main__":
    _define_flags()
    cli.run_main(main)
