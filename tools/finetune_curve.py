#!/usr/bin/env python3
"""Learning curve: training from scratch vs fine-tuning vs multi-task fine-tuning, against the
downstream data size, several seeds per point.

    python tools/finetune_curve.py --input input.json --pretrained PRETRAINED [--branch B] \\
        --system SYS [--system ...] (--valid VALID_SYS ... | --valid_last N) \\
        [--frames 1,2,5,10 | --fractions 1,2,5,10,20,50,100] [--seeds 1,2,3] \\
        [--modes scratch,finetune,multitask] [--retain HEAD=SYS[,SYS]] \\
        [--retain_valid HEAD=SYS[:NFRAMES]] [--retain_prob 0.3] [--numb_steps 1000] [--out curve]

For each size (``--frames``: the first N frames of every ``--system``; or ``--fractions``: the
first f % of them) and seed, the downstream model is

* ``scratch``: the pretrained model's architecture (its model section, as with
  ``--use_pretrain_script``) from a random initialization (descriptor and fitting seeds = the
  seed);
* ``finetune``: fine-tuned from ``--pretrained`` (branch ``--branch``), as ``dpkeras.train
  --finetune``;
* ``multitask``: multi-task fine-tuned (``finetune_head: BRANCH``) with the pretraining heads of
  ``--retain`` kept, trained on their data with probability ``--retain_prob`` in all;

all with the learning rate, loss and ``--numb_steps`` of ``--input``, and tested on ``--valid``
(or the last ``--valid_last`` frames of each ``--system``, which are then never trained on).
Convergence is checked, not assumed: the validation force error at 80 % and at 100 % of the
steps (``lcurve.out``) is written as ``last20_change`` (relative), and the summary says how many
runs changed by less than 5 % over their last 20 %. Forgetting: each ``--retain_valid`` head is
evaluated before (the pretrained branch) and after (the multi-task fine-tuned head).

Writes ``OUT.csv`` (one row per run), ``OUT_summary.csv`` (mean and standard deviation over the
seeds) and, when matplotlib is installed, ``OUT.png`` (error bars: the spread over seeds). This
is a tool, not a test: a useful curve takes hours of CPU.
"""

import argparse
import copy
import csv
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

CONVERGED = 0.05


def subset_system(src, dst, fraction=None, nframes=None, exclude_last=0):
    """Copy the first frames of the npy system ``src`` to ``dst``: ``nframes`` of them, or a
    ``fraction`` (0-1] of those before the last ``exclude_last``; returns the count."""
    from dpkeras.data.system import DeepmdSystem, write_frames

    n_total = DeepmdSystem(src).nframes - exclude_last
    n = nframes if nframes is not None else max(1, int(round(n_total * fraction)))
    if not 0 < n <= n_total:
        raise SystemExit(f"{src}: {n} frames asked, {n_total} available for training")
    return write_frames(src, dst, range(n))


def last_frames(src, dst, n):
    from dpkeras.data.system import DeepmdSystem, write_frames

    total = DeepmdSystem(src).nframes
    return write_frames(src, dst, range(total - n, total))


def lcurve_change(run_dir, column):
    """Relative change of ``column`` of ``lcurve.out`` between 80 % and 100 % of the steps."""
    path = os.path.join(run_dir, "lcurve.out")
    with open(path) as fh:
        names = fh.readline().lstrip("#").split()
    data = np.atleast_2d(np.loadtxt(path))
    col = names.index(column)
    steps, vals = data[:, 0], data[:, col]
    at80 = vals[np.argmin(np.abs(steps - 0.8 * steps[-1]))]
    return float(abs(vals[-1] - at80) / max(abs(vals[-1]), 1e-300))


def _seed_sections(model_section, seed):
    for key in ("descriptor", "fitting_net", "type_embedding"):
        sec = model_section.get(key)
        if isinstance(sec, dict) and "seed" in sec:
            sec["seed"] = seed


def _pretrained(pretrained):
    from dpkeras.load import load

    if os.path.exists(pretrained):
        return load(pretrained)[0]
    import dpkeras.zoo

    return load(dpkeras.zoo.fetch(pretrained))[0]


def run_single(config, workdir, pretrained, branch, valid, from_pretrained, seed,
               retain_valid=None):
    """Scratch or fine-tuned; with ``retain_valid[branch]``, the fine-tuned model is also
    tested on the branch's own held-out data, before (pretrained) and after: forgetting."""
    from dpkeras.data.pipeline import DataSystems
    from dpkeras.finetune import load_finetune_input, validation_error
    from dpkeras.load import pick_head
    from dpkeras.trainer import Trainer

    inp = os.path.join(workdir, "input.json")
    with open(inp, "w") as f:
        json.dump(config, f)
    cfg, spec = load_finetune_input(inp, pretrained, branch, use_pretrain_script=True)
    if not from_pretrained:  # the pretrained architecture, randomly initialized
        spec = None
        _seed_sections(cfg["model"], seed)
    run_dir = os.path.join(workdir, "run")
    model = Trainer(cfg, run_dir, finetune=spec).run()
    data = DataSystems({"systems": valid, "batch_size": 1}, model.get_type_map())
    e, f = validation_error(model, data, nframes=10 ** 9)
    forgetting = {}
    if from_pretrained and retain_valid and branch in retain_valid:
        systems, nframes = retain_valid[branch]
        pre = pick_head(_pretrained(pretrained), branch, pretrained)

        def err(m):   # the data's types in each model's own type_map
            rdata = DataSystems({"systems": systems, "batch_size": 1}, m.get_type_map())
            return validation_error(m, rdata, nframes=nframes)

        forgetting[branch] = (err(pre), err(model))
    return e, f, lcurve_change(run_dir, "rmse_f_val"), forgetting


def run_multitask(config, workdir, pretrained, branch, valid, retain, retain_valid,
                  retain_prob, seed):
    from dpkeras.data.pipeline import DataSystems
    from dpkeras.finetune import load_finetune_input, validation_error
    from dpkeras.load import pick_head
    from dpkeras.trainer import Trainer

    pre = _pretrained(pretrained)
    type_map = list(pick_head(pre, branch, pretrained).get_type_map())
    heads = {"downstream": {"type_map": "my_type_map", "descriptor": "my_descriptor",
                            "finetune_head": branch}}
    data_dict = {"downstream": {"training_data": config["training"]["training_data"],
                                "validation_data": config["training"]["validation_data"]}}
    for head, systems in retain.items():
        heads[head] = {"type_map": "my_type_map", "descriptor": "my_descriptor"}
        data_dict[head] = {"training_data": {"systems": systems, "batch_size": 1}}
    mt = {
        "model": {"shared_dict": {"my_type_map": type_map, "my_descriptor": {}},
                  "model_dict": heads},
        "learning_rate": config["learning_rate"],
        "loss_dict": {h: config["loss"] for h in heads},
        "training": {k: v for k, v in config["training"].items()
                     if k not in ("training_data", "validation_data")},
    }
    mt["training"]["data_dict"] = data_dict
    mt["training"]["model_prob"] = dict({"downstream": 1.0 - retain_prob},
                                        **{h: retain_prob / len(retain) for h in retain})
    inp = os.path.join(workdir, "input.json")
    with open(inp, "w") as f:
        json.dump(mt, f)
    cfg, spec = load_finetune_input(inp, pretrained, use_pretrain_script=True)
    run_dir = os.path.join(workdir, "run")
    model = Trainer(cfg, run_dir, finetune=spec).run()
    head = model.heads["downstream"]
    data = DataSystems({"systems": valid, "batch_size": 1}, head.get_type_map())
    e, f = validation_error(head, data, nframes=10 ** 9)
    forgetting = {}
    for name, (systems, nframes) in retain_valid.items():
        rdata = DataSystems({"systems": systems, "batch_size": 1}, head.get_type_map())
        before = validation_error(pick_head(pre, name, pretrained), rdata, nframes=nframes)
        after = validation_error(model.heads[name], rdata, nframes=nframes)
        forgetting[name] = (before, after)
    return e, f, lcurve_change(run_dir, "rmse_f_val_downstream"), forgetting


def write_rows(rows, path):
    """All runs so far, one row each (columns: the first row's, then any new ones)."""
    keys = list(rows[0]) + sorted({k for r in rows for k in r} - set(rows[0]))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _pairs(items, sep):
    out = {}
    for item in items or []:
        head, _, rest = item.partition("=")
        out[head] = rest.split(sep)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="DeePMD-kit input.json of the downstream model")
    ap.add_argument("--pretrained", required=True)
    ap.add_argument("--branch", default=None, help="branch of a multi-task pretrained model")
    ap.add_argument("--system", action="append", required=True, help="downstream training system")
    ap.add_argument("--valid", action="append", help="validation system")
    ap.add_argument("--valid_last", type=int, default=0,
                    help="validate on the last N frames of each --system (never trained on)")
    ap.add_argument("--frames", default=None, help="training frame counts, e.g. 1,2,5,10")
    ap.add_argument("--fractions", default="1,2,5,10,20,50,100")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--modes", default="scratch,finetune")
    ap.add_argument("--retain", action="append", help="multitask: HEAD=SYS[,SYS] kept head")
    ap.add_argument("--retain_valid", action="append",
                    help="forgetting check: HEAD=SYS[,SYS][:NFRAMES]")
    ap.add_argument("--retain_prob", type=float, default=0.3)
    ap.add_argument("--numb_steps", type=int, default=1000)
    ap.add_argument("--out", default="finetune_curve")
    args = ap.parse_args()
    if not args.valid and not args.valid_last:
        raise SystemExit("give --valid SYSTEM or --valid_last N")
    modes = args.modes.split(",")
    retain = _pairs(args.retain, ",")
    if "multitask" in modes and not retain:
        raise SystemExit("--modes multitask needs --retain HEAD=SYSTEM")
    retain_valid = {}
    for head, spec in _pairs(args.retain_valid, "\0").items():
        systems, _, n = spec[0].partition(":")
        retain_valid[head] = (systems.split(","), int(n) if n else 10 ** 9)
    with open(args.input) as f:
        base = json.load(f)
    sizes = ([("frames", int(x)) for x in args.frames.split(",")] if args.frames else
             [("fraction", float(x) / 100) for x in args.fractions.split(",")])
    seeds = [int(s) for s in args.seeds.split(",")]
    rows, t_start = [], time.time()
    shared = tempfile.mkdtemp(prefix="curve-valid-")
    valid = args.valid
    if not valid:
        valid = [os.path.join(shared, f"valid{i}") for i in range(len(args.system))]
        for src, dst in zip(args.system, valid):
            last_frames(src, dst, args.valid_last)
    from dpkeras.data.system import DeepmdSystem

    nvalid = sum(DeepmdSystem(v).nframes for v in valid)
    for kind, size in sizes:
        for seed in seeds:
            for mode in modes:
                work = tempfile.mkdtemp(prefix=f"curve-{size:g}-{mode}-{seed}-")
                systems, nframes = [], 0
                for i, s in enumerate(args.system):
                    dst = os.path.join(work, f"sys{i}")
                    nframes += subset_system(s, dst, nframes=size if kind == "frames" else None,
                                             fraction=size if kind == "fraction" else None,
                                             exclude_last=args.valid_last)
                    systems.append(dst)
                cfg = copy.deepcopy(base)
                cfg["training"]["training_data"] = {"systems": systems, "batch_size": "auto"}
                cfg["training"]["validation_data"] = {"systems": valid, "batch_size": 1,
                                                      "numb_btch": nvalid}
                cfg["training"]["numb_steps"] = args.numb_steps
                cfg["training"]["disp_freq"] = max(1, args.numb_steps // 10)
                cfg["training"]["save_freq"] = args.numb_steps
                cfg["training"]["seed"] = seed
                t0 = time.time()
                if mode == "multitask":
                    e, f, change, forget = run_multitask(
                        cfg, work, args.pretrained, args.branch, valid, retain, retain_valid,
                        args.retain_prob, seed)
                else:
                    e, f, change, forget = run_single(cfg, work, args.pretrained, args.branch,
                                                      valid, mode == "finetune", seed,
                                                      retain_valid)
                row = {"frames": nframes, "mode": mode, "seed": seed, "rmse_e_per_atom": e,
                       "rmse_f": f, "last20_change": change, "seconds": time.time() - t0}
                for head, ((eb, fb), (ea, fa)) in forget.items():
                    row.update({f"{head}_rmse_f_before": fb, f"{head}_rmse_f_after": fa,
                                f"{head}_rmse_e_before": eb, f"{head}_rmse_e_after": ea})
                rows.append(row)
                write_rows(rows, args.out + ".csv")   # after every run: a stopped curve keeps them
                print(f"{nframes:5d} frames  {mode:9s}  seed {seed}  energy {e:.4e} eV/atom  "
                      f"force {f:.4e} eV/A  last-20% change {change:.1%}  "
                      f"{row['seconds']:.0f} s" + "".join(
                          f"  {h}: force {fb:.4f} -> {fa:.4f}"
                          for h, ((_, fb), (_, fa)) in forget.items()), flush=True)
                shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(shared, ignore_errors=True)
    write_rows(rows, args.out + ".csv")
    summary = []
    for n in sorted({r["frames"] for r in rows}):
        for mode in modes:
            sel = [r for r in rows if r["frames"] == n and r["mode"] == mode]
            es, fs = [r["rmse_e_per_atom"] for r in sel], [r["rmse_f"] for r in sel]
            summary.append({"frames": n, "mode": mode, "seeds": len(sel),
                            "rmse_e_mean": np.mean(es), "rmse_e_std": np.std(es),
                            "rmse_f_mean": np.mean(fs), "rmse_f_std": np.std(fs)})
    with open(args.out + "_summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary[0]))
        w.writeheader()
        w.writerows(summary)
    ok = sum(r["last20_change"] < CONVERGED for r in rows)
    print(f"wrote {args.out}.csv and {args.out}_summary.csv; {ok} of {len(rows)} runs changed "
          f"their validation force error by < {CONVERGED:.0%} over the last 20 % of steps; "
          f"{time.time() - t_start:.0f} s of wall time")
    for s in summary:
        print(f"{s['frames']:5d} frames  {s['mode']:9s}  energy {s['rmse_e_mean']:.4f} +- "
              f"{s['rmse_e_std']:.4f} eV/atom  force {s['rmse_f_mean']:.4f} +- "
              f"{s['rmse_f_std']:.4f} eV/A  ({s['seeds']} seeds)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib), CSV only",
              file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, col, label in ((axes[0], "rmse_e", "energy RMSE (eV/atom)"),
                           (axes[1], "rmse_f", "force RMSE (eV/A)")):
        for mode in modes:
            pts = [s for s in summary if s["mode"] == mode]
            ax.errorbar([s["frames"] for s in pts], [s[col + "_mean"] for s in pts],
                        yerr=[s[col + "_std"] for s in pts], fmt="o-", capsize=3, label=mode)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training frames")
        ax.set_ylabel(label)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=120)
    print(f"wrote {args.out}.png")


if __name__ == "__main__":
    main()
