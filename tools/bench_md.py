"""Benchmark: molecular dynamics speed (ns/day) of one model in LAMMPS (``python -m
dpkeras.lammps``) and in ASE (``dpkeras.calculator.DP`` with ASE's VelocityVerlet).

    python tools/bench_md.py [--model tests/data/water_se_e2_a/frozen_model.pb]
                             [--atoms 192,1536] [--steps 100] [--timestep 0.5]

The system is DeePMD-kit's LAMMPS water example (``tests/data/deepmd_lmp/water.lmp``, 192 atoms),
replicated k x k x k for larger sizes; NVE from 330 K velocities, 0.5 fs. Each engine first runs
10 steps (compilation, excluded), then ``--steps`` timed steps; the time per step and ns/day are
printed with the ratio LAMMPS / ASE. Threads: what TensorFlow takes by default (all cores).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WATER_LMP = os.path.join(ROOT, "tests", "data", "deepmd_lmp", "water.lmp")
DEFAULT_MODEL = os.path.join(ROOT, "tests", "data", "water_se_e2_a", "frozen_model.pb")

LAMMPS_INPUT = """units metal
boundary p p p
atom_style atomic
read_data {data}
replicate {k} {k} {k}
mass 1 16
mass 2 2
pair_style deepmd {model}
pair_coeff * * O H
velocity all create 330.0 23456789
fix 1 all nve
timestep {dt}
thermo {steps}
run 10
run {steps}
"""


def ns_per_day(seconds_per_step, timestep_fs):
    return timestep_fs * 1e-6 / seconds_per_step * 86400


def bench_lammps(model, k, steps, dt_fs):
    from dpkeras import lammps as dplmp

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.lammps")
        with open(path, "w") as fh:
            fh.write(LAMMPS_INPUT.format(data=WATER_LMP, k=k, model=os.path.abspath(model),
                                         dt=dt_fs * 1e-3, steps=steps))
        log = os.path.join(tmp, "log.lammps")
        dplmp.run(path, log_file=log, screen=False)
        loops = [float(line.split()[3]) for line in open(log) if line.startswith("Loop time")]
    return loops[-1] / steps


def bench_ase(model, k, steps, dt_fs):
    from ase import Atoms, units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    from dpkeras.calculator import DP

    d = np.loadtxt(WATER_LMP, skiprows=10)
    d = d[np.argsort(d[:, 0])]
    atoms = Atoms(["O" if t == 1 else "H" for t in d[:, 1].astype(int)], positions=d[:, 2:5],
                  cell=np.diag([12.44470] * 3), pbc=True).repeat((k, k, k))
    atoms.set_masses([16.0 if s == "O" else 2.0 for s in atoms.get_chemical_symbols()])
    MaxwellBoltzmannDistribution(atoms, temperature_K=330, rng=np.random.default_rng(1))
    atoms.calc = DP(model)
    md = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    md.run(10)
    t0 = time.perf_counter()
    md.run(steps)
    return (time.perf_counter() - t0) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--atoms", default="192,1536")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--timestep", type=float, default=0.5, help="fs")
    args = p.parse_args()
    rows = []
    for n in map(int, args.atoms.split(",")):
        k = round((n / 192) ** (1 / 3))
        if 192 * k ** 3 != n:
            sys.exit(f"--atoms {n}: not 192 x k^3")
        lmp = bench_lammps(args.model, k, args.steps, args.timestep)
        ase = bench_ase(args.model, k, args.steps, args.timestep)
        rows.append((n, lmp, ase))
        print(f"{n} atoms: LAMMPS {1e3 * lmp:.1f} ms/step, ASE {1e3 * ase:.1f} ms/step",
              flush=True)
    print(f"\nmodel {args.model}, {args.steps} steps of {args.timestep} fs after 10 warm-up "
          "steps, NVE\n")
    print("| atoms | LAMMPS (dpkeras.lammps) ms/step | ns/day | ASE (dpkeras.calculator) ms/step "
          "| ns/day | LAMMPS / ASE time |")
    print("|---|---|---|---|---|---|")
    for n, lmp, ase in rows:
        print(f"| {n} | {1e3 * lmp:.1f} | {ns_per_day(lmp, args.timestep):.3f} | "
              f"{1e3 * ase:.1f} | {ns_per_day(ase, args.timestep):.3f} | {lmp / ase:.2f} |")


if __name__ == "__main__":
    main()
