#!/usr/bin/env python3
"""Learning curve: training from scratch vs fine-tuning, against the downstream data size.

    python tools/finetune_curve.py --input input.json --pretrained pretrained.pb \\
        --system SYS [--system SYS ...] --valid VALID_SYS [--fractions 1,2,5,10,20,50,100] \\
        [--numb_steps 1000] [--out curve]

For each fraction f (percent), the first f % of the frames of every ``--system`` (at least one
frame) are copied to a temporary system. On it the pretrained model's architecture (its model
section, as with ``--use_pretrain_script``) is trained from a random initialization ("scratch")
and, separately, fine-tuned from ``--pretrained`` (``dpkeras.train --finetune``), both with the
learning rate, loss and ``--numb_steps`` of ``--input``, and both are tested on all frames of
``--valid``. Writes ``OUT.csv`` (percent, frames, mode, energy RMSE eV/atom, force RMSE eV/A)
and, when matplotlib is installed, ``OUT.png``; without matplotlib it says so and writes the
CSV only. This is a tool, not a test: a useful curve takes hours of CPU.
"""

import argparse
import copy
import csv
import json
import os
import shutil
import sys
import tempfile


def subset_system(src, dst, fraction):
    """Copy the first ``fraction`` (0-1] of the frames of the npy system ``src`` to ``dst``."""
    from dpkeras.data.system import DeepmdSystem, write_frames

    n_total = DeepmdSystem(src).nframes
    return write_frames(src, dst, range(max(1, int(round(n_total * fraction)))))


def run(config, workdir, pretrained, valid, from_pretrained):
    from dpkeras.finetune import load_finetune_input, validation_error
    from dpkeras.data.pipeline import DataSystems
    from dpkeras.trainer import Trainer

    inp = os.path.join(workdir, "input.json")
    with open(inp, "w") as f:
        json.dump(config, f)
    cfg, spec = load_finetune_input(inp, pretrained, use_pretrain_script=True)
    if not from_pretrained:  # the pretrained architecture, randomly initialized
        spec = None
    model = Trainer(cfg, os.path.join(workdir, "run"), finetune=spec).run()
    data = DataSystems({"systems": valid, "batch_size": 1}, model.get_type_map())
    return validation_error(model, data, nframes=10 ** 9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="DeePMD-kit input.json of the downstream model")
    ap.add_argument("--pretrained", required=True)
    ap.add_argument("--system", action="append", required=True, help="downstream training system")
    ap.add_argument("--valid", action="append", required=True, help="validation system")
    ap.add_argument("--fractions", default="1,2,5,10,20,50,100")
    ap.add_argument("--numb_steps", type=int, default=1000)
    ap.add_argument("--out", default="finetune_curve")
    args = ap.parse_args()
    with open(args.input) as f:
        base = json.load(f)
    rows = []
    for pct in [float(x) for x in args.fractions.split(",")]:
        for mode in ("scratch", "finetune"):
            work = tempfile.mkdtemp(prefix=f"curve-{pct:g}-{mode}-")
            systems, nframes = [], 0
            for i, s in enumerate(args.system):
                dst = os.path.join(work, f"sys{i}")
                nframes += subset_system(s, dst, pct / 100.0)
                systems.append(dst)
            cfg = copy.deepcopy(base)
            cfg["training"]["training_data"] = {"systems": systems, "batch_size": "auto"}
            cfg["training"]["validation_data"] = {"systems": args.valid, "batch_size": 1}
            cfg["training"]["numb_steps"] = args.numb_steps
            cfg["training"].setdefault("seed", 1)
            e, f = run(cfg, work, args.pretrained, args.valid, mode == "finetune")
            rows.append((pct, nframes, mode, e, f))
            print(f"{pct:6g} %  {nframes:6d} frames  {mode:9s}  energy {e:.4e} eV/atom  "
                  f"force {f:.4e} eV/A", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    with open(args.out + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["percent", "frames", "mode", "rmse_e_per_atom", "rmse_f"])
        w.writerows(rows)
    print(f"wrote {args.out}.csv")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib), CSV only",
              file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, col, label in ((axes[0], 3, "energy RMSE (eV/atom)"), (axes[1], 4, "force RMSE (eV/A)")):
        for mode in ("scratch", "finetune"):
            pts = [(r[1], r[col]) for r in rows if r[2] == mode]
            ax.loglog(*zip(*pts), "o-", label=mode)
        ax.set_xlabel("training frames")
        ax.set_ylabel(label)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=120)
    print(f"wrote {args.out}.png")


if __name__ == "__main__":
    main()
