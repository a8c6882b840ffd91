"""``python -m dpkeras.ipi water.json``: DeePMD-kit's ``dp_ipi`` with any model dpkeras loads.

Serves energies, forces and virials to an `i-PI <https://ipi-code.org>`_ server over its socket
protocol (ASE's ``SocketClient``, the well-kept implementation of it). The JSON file is
``dp_ipi``'s::

    {"graph_file": "graph.pb", "coord_file": "conf.xyz", "atom_type": {"OW": 0, "HW1": 1, "HW2": 1},
     "use_unix": true, "host": "localhost", "port": 31415, "verbose": false}

``graph_file``: a DeePMD-kit ``.pb`` of any release, ``.dp``, a dpkeras SavedModel / ``.keras`` /
run directory, or a zoo name; ``coord_file``: an xyz file whose atom names (first column) give the
atoms' order; ``atom_type``: atom name -> the model's type index. ``use_unix``: connect to the unix
socket ``/tmp/ipi_<host>`` (i-PI's ``mode='unix'`` with ``<address>host</address>``), else to TCP
``host:port``. Paths are relative to the working directory, as for ``dp_ipi``. As ``dp_ipi``, the
cell i-PI sends is always used (periodic), and the virial is DeePMD-kit's, not symmetrized.
Needs ``ase`` (``pip install "dpkeras[ase]"``) and an i-PI server (``pip install ipi``).
"""

import json
import os

import numpy as np
from absl import flags

from dpkeras import cli
from dpkeras.errors import DPKerasError

DEFAULTS = {"use_unix": False, "host": "localhost", "port": 31415, "verbose": False}
REQUIRED = ("graph_file", "coord_file", "atom_type")


def read_config(path):
    """``dp_ipi``'s JSON, checked: the required keys, no unknown key, types."""
    if not os.path.isfile(path):
        raise DPKerasError(f"{path}: no such file (dp_ipi's JSON: graph_file, coord_file, "
                           "atom_type, use_unix, host, port, verbose)")
    try:
        with open(path) as fh:
            cfg = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DPKerasError(f"{path}: not valid JSON ({exc})") from None
    unknown = sorted(set(cfg) - set(REQUIRED) - set(DEFAULTS))
    if unknown:
        raise DPKerasError(f"{path}: unknown key(s) {unknown}; dp_ipi's keys are "
                           f"{list(REQUIRED) + list(DEFAULTS)}")
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise DPKerasError(f"{path}: missing key(s) {missing}")
    if not isinstance(cfg["atom_type"], dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in cfg["atom_type"].values()):
        raise DPKerasError(f"{path}: atom_type must map atom names to integer type indices, "
                           f"e.g. {{\"OW\": 0, \"HW1\": 1}}; got {cfg['atom_type']!r}")
    out = dict(DEFAULTS, **cfg)
    if not isinstance(out["port"], int):
        raise DPKerasError(f"{path}: port must be an integer, got {out['port']!r}")
    return out


def read_xyz_names(path):
    """The atom names (first column) of the first frame of an xyz file."""
    if not os.path.isfile(path):
        raise DPKerasError(f"coord_file {path}: no such file")
    with open(path) as fh:
        lines = fh.read().splitlines()
    try:
        natoms = int(lines[0].split()[0])
        names = [lines[2 + k].split()[0] for k in range(natoms)]
    except (IndexError, ValueError):
        raise DPKerasError(f"coord_file {path}: not an xyz file (atom count, comment line, "
                           "then one 'NAME x y z' line per atom)") from None
    return names


def atom_types(names, atom_type, type_map):
    """``[natoms]`` model type indices of the xyz names."""
    missing = sorted(set(names) - set(atom_type))
    if missing:
        raise DPKerasError(f"atom name(s) {missing} of coord_file are not in atom_type "
                           f"{atom_type}")
    types = np.array([atom_type[n] for n in names], dtype=np.int32)
    bad = sorted({int(t) for t in types if not 0 <= t < len(type_map)})
    if bad:
        raise DPKerasError(f"atom_type index(es) {bad} are not types of the model (type_map "
                           f"{type_map}: 0..{len(type_map) - 1})")
    return types


def make_client(cfg, log=None):
    """A connected socket client serving the model of ``cfg`` (from :func:`read_config`)."""
    from ase import Atoms
    from ase.calculators.socketio import SocketClient

    from dpkeras.infer import open_deep_pot

    dp = open_deep_pot(cfg["graph_file"])
    names = read_xyz_names(cfg["coord_file"])
    types = atom_types(names, cfg["atom_type"], list(dp.get_type_map()))

    class DeepmdClient(SocketClient):
        """Answers i-PI with the model: energy (eV), forces (eV/A), virial (eV), as dp_ipi."""

        def calculate(self, atoms, use_stress):
            del use_stress
            cell = np.asarray(atoms.cell, dtype=np.float64).reshape(1, 9)
            e, f, v = dp.eval(atoms.positions.reshape(1, -1), cell, types)
            if cfg["verbose"] and log:
                log.info("energy %.10f eV", float(e[0, 0]))
            return float(e[0, 0]), f[0], v[0].reshape(3, 3)

    atoms = Atoms([dp.get_type_map()[t] for t in types], positions=np.zeros((len(types), 3)),
                  pbc=True)
    where = f"/tmp/ipi_{cfg['host']}" if cfg["use_unix"] else f"{cfg['host']}:{cfg['port']}"
    try:
        if cfg["use_unix"]:
            client = DeepmdClient(unixsocket=cfg["host"])
        else:
            client = DeepmdClient(host=cfg["host"], port=cfg["port"])
    except OSError as exc:
        raise DPKerasError(f"could not connect to the i-PI server at {where} ({exc}); start "
                           "i-pi first (its <ffsocket> address and mode must match host and "
                           "use_unix)") from None
    if log:
        log.info("connected to i-PI at %s: %d atoms, model %s (type_map %s)", where,
                 len(types), cfg["graph_file"], list(dp.get_type_map()))
    return client, atoms


def serve(path, log=None):
    """Serve until the i-PI server says EXIT (or closes the socket)."""
    cfg = read_config(path)
    client, atoms = make_client(cfg, log)
    try:
        client.run(atoms, use_stress=True)
    except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
        if log:
            log.info("the i-PI server closed the connection (%s)", type(exc).__name__)
    finally:
        client.close()


def _define_flags():
    cli.define_log_level()


def main(argv):
    log = cli.setup_logging(flags.FLAGS.log_level)
    if len(argv) != 2:
        raise DPKerasError("usage: python -m dpkeras.ipi water.json (dp_ipi's JSON file)")
    serve(argv[1], log)


if __name__ == "__main__":
    _define_flags()
    cli.run_main(main)
