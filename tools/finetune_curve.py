#!/usr/bin/env python3
"""Learning curve: training from scratch vs fine-tuning vs multi-task fine-tuning, against the
downstream data size, several seeds per point, every run trained until it has converged.

    python tools/finetune_curve.py --input input.json --pretrained PRETRAINED [--branch B] \\
        --system SYS [--system ...] (--valid VALID_SYS ... | --valid_last N) \\
        [--frames 1,2,5,10 | --fractions 1,2,5,10,20,50,100] [--seeds 1,2,3] \\
        [--modes scratch,finetune,multitask] [--retain HEAD=SYS[,SYS]] \\
        [--retain_valid HEAD=SYS[:NFRAMES]] [--retain_prob 0.3] \\
        [--numb_steps 1000] [--max_steps 8000] [--out curve]
    python tools/finetune_curve.py --plot curve.csv      # the summary and PNG of a CSV

For each size (``--frames``: the first N frames of every ``--system``; or ``--fractions``: the
first f % of them) and seed, the downstream model is

* ``scratch``: the pretrained model's architecture (its model section, as with
  ``--use_pretrain_script``) from a random initialization (descriptor and fitting seeds = the
  seed);
* ``finetune``: fine-tuned from ``--pretrained`` (branch ``--branch``), as ``dpkeras.train
  --finetune``;
* ``multitask``: multi-task fine-tuned (``finetune_head: BRANCH``) with the pretraining heads of
  ``--retain`` kept, trained on their data with probability ``--retain_prob`` in all;

all with the learning rate and loss of ``--input``, and tested on every frame of ``--valid``
(or of the last ``--valid_last`` frames of each ``--system``, which are then never trained on).

Convergence is checked, not assumed. A run of S steps keeps its checkpoints at every fifth of
S; the model of step 0.8 S and the final one are both evaluated on the whole validation set, and
the run has converged when neither the energy nor the force RMSE changed by 5 % or more over
those last 20 % of steps (DeePMD-kit's exponential learning rate is stretched to S, so a longer
run is a new run). A run that has not converged is trained again from the start with twice the
steps, up to ``--max_steps``; the CSV records the steps of the last attempt and whether it
converged. Each attempt runs in a process of its own (XLA keeps compiled code for the life of a
process). Forgetting: each ``--retain_valid`` head is evaluated before (the pretrained branch)
and after (the multi-task fine-tuned head; for ``finetune``, the fine-tuned model itself when
``--branch`` is that head).

Writes ``OUT.csv`` (one row per run, rewritten after every run), ``OUT_summary.csv`` (mean and
standard deviation over the seeds) and, when matplotlib is installed, ``OUT.png`` (error bars:
the spread over seeds). This is a tool, not a test: a useful curve takes hours of CPU.
"""

import argparse
import copy
import csv
import json
import os
import shutil
import subprocess
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


def checkpoint_errors(run_dir, model, steps, evaluate):
    """``(at 80 %, at the end)`` of ``evaluate(model)``: the model as training left it, then
    with the weights of its checkpoint at 0.8 ``steps`` restored (the model is changed)."""
    from dpkeras import checkpoint

    final = evaluate(model)
    ckpt = os.path.join(run_dir, checkpoint.CKPT_DIR, f"ckpt-{steps * 4 // 5}")
    checkpoint.verify(ckpt)
    checkpoint.restore(ckpt, model)
    return evaluate(model), final


def relative_change(at80, final):
    """The largest relative change of the (energy, force) RMSEs over the last 20 % of steps."""
    return max(abs(b - a) / max(abs(b), 1e-300) for a, b in zip(at80, final))


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
    forgetting = {}
    if from_pretrained and retain_valid and branch in retain_valid:
        systems, nframes = retain_valid[branch]
        pre = pick_head(_pretrained(pretrained), branch, pretrained)

        def err(m):   # the data's types in each model's own type_map
            rdata = DataSystems({"systems": systems, "batch_size": 1}, m.get_type_map())
            return validation_error(m, rdata, nframes=nframes)

        forgetting[branch] = (err(pre), err(model))
    data = DataSystems({"systems": valid, "batch_size": 1}, model.get_type_map())
    at80, final = checkpoint_errors(run_dir, model, cfg["training"]["numb_steps"],
                                    lambda m: validation_error(m, data, nframes=10 ** 9))
    return final, at80, forgetting


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
    forgetting = {}
    for name, (systems, nframes) in retain_valid.items():
        rdata = DataSystems({"systems": systems, "batch_size": 1}, head.get_type_map())
        before = validation_error(pick_head(pre, name, pretrained), rdata, nframes=nframes)
        after = validation_error(model.heads[name], rdata, nframes=nframes)
        forgetting[name] = (before, after)
    data = DataSystems({"systems": valid, "batch_size": 1}, head.get_type_map())
    at80, final = checkpoint_errors(
        run_dir, model, cfg["training"]["numb_steps"],
        lambda m: validation_error(m.heads["downstream"], data, nframes=10 ** 9))
    return final, at80, forgetting


def attempt(spec_path):
    """One training run, in this process: the ``--_attempt`` entry point (``spec_path``: the
    JSON the driver wrote); writes ``result.json`` beside it."""
    with open(spec_path) as f:
        a = json.load(f)
    retain_valid = {h: tuple(v) for h, v in a["retain_valid"].items()}
    if a["mode"] == "multitask":
        final, at80, forget = run_multitask(a["config"], a["workdir"], a["pretrained"],
                                            a["branch"], a["valid"], a["retain"], retain_valid,
                                            a["retain_prob"], a["seed"])
    else:
        final, at80, forget = run_single(a["config"], a["workdir"], a["pretrained"],
                                         a["branch"], a["valid"], a["mode"] == "finetune",
                                         a["seed"], retain_valid)
    with open(os.path.join(a["workdir"], "result.json"), "w") as f:
        json.dump({"final": final, "at80": at80, "forgetting": forget}, f)


def train_converged(spec, steps, max_steps):
    """Train ``spec`` (a run of :func:`attempt`) with ``steps``, then twice as many, ... until
    it converged or ``max_steps`` is reached, each attempt in a process of its own. Returns
    the last attempt's result with ``steps``, ``attempts``, ``converged``, ``change``,
    ``seconds`` (all attempts)."""
    attempts, seconds = 0, 0.0
    while True:
        attempts += 1
        cfg = copy.deepcopy(spec["config"])
        t = cfg["training"]
        t.update(numb_steps=steps, disp_freq=max(1, steps // 10), save_freq=steps // 5,
                 max_ckpt_keep=6)
        workdir = os.path.join(spec["workdir"], f"steps-{steps}")
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "attempt.json")
        with open(path, "w") as f:
            json.dump(dict(spec, config=cfg, workdir=workdir), f)
        logfile = os.path.join(workdir, "attempt.log")
        t0 = time.time()
        with open(logfile, "w") as log:
            rc = subprocess.call([sys.executable, os.path.abspath(__file__), "--_attempt", path],
                                 stdout=log, stderr=subprocess.STDOUT)
        seconds += time.time() - t0
        if rc != 0:
            with open(logfile) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"the run of {steps} steps failed (exit {rc}); the end of "
                               f"{logfile}:\n{tail}")
        with open(os.path.join(workdir, "result.json")) as f:
            res = json.load(f)
        change = relative_change(res["at80"], res["final"])
        converged = change < CONVERGED
        if converged or 2 * steps > max_steps:
            return dict(res, steps=steps, attempts=attempts, converged=converged,
                        change=change, seconds=seconds)
        print(f"    {steps} steps: energy/force RMSE changed by {change:.1%} over the last "
              f"20 %; again with {2 * steps}", flush=True)
        steps *= 2


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


def read_rows(path):
    """The rows of a curve CSV, numbers as numbers."""
    def num(v):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return {"True": True, "False": False}.get(v, v)

    with open(path, newline="") as f:
        return [{k: num(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]


def summarize(rows, out):
    """Write ``OUT_summary.csv`` and, with matplotlib, ``OUT.png``; print the summary."""
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    heads = sorted({k[:-len("_rmse_f_after")] for r in rows for k in r
                    if k.endswith("_rmse_f_after")})
    summary = []
    for n in sorted({r["frames"] for r in rows}):
        for mode in modes:
            sel = [r for r in rows if r["frames"] == n and r["mode"] == mode]
            if not sel:
                continue
            row = {"frames": n, "mode": mode, "seeds": len(sel),
                   "converged": sum(bool(r["converged"]) for r in sel),
                   "steps_max": max(r["steps"] for r in sel)}
            for col in ("rmse_e", "rmse_f"):
                vals = [r[col] for r in sel]
                row.update({col + "_mean": np.mean(vals), col + "_std": np.std(vals)})
            for h in heads:
                for when in ("before", "after"):
                    vals = [r[f"{h}_rmse_f_{when}"] for r in sel if f"{h}_rmse_f_{when}" in r]
                    if vals:
                        row[f"{h}_rmse_f_{when}_mean"] = np.mean(vals)
            summary.append(row)
    keys = list(dict.fromkeys(k for r in summary for k in r))
    with open(out + "_summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(summary)
    ok = sum(bool(r["converged"]) for r in rows)
    print(f"wrote {out}_summary.csv; {ok} of {len(rows)} runs converged (energy and force "
          f"validation RMSE changed by < {CONVERGED:.0%} over their last 20 % of steps); "
          f"{sum(r['seconds'] for r in rows):.0f} s of training runs")
    for s in summary:
        print(f"{s['frames']:5d} frames  {s['mode']:9s}  energy {s['rmse_e_mean']:.4f} +- "
              f"{s['rmse_e_std']:.4f} eV/atom  force {s['rmse_f_mean']:.4f} +- "
              f"{s['rmse_f_std']:.4f} eV/A  ({s['seeds']} seeds, {s['converged']} converged, "
              f"up to {s['steps_max']} steps)")
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
    fig.suptitle(os.path.basename(out))
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=120)
    print(f"wrote {out}.png")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--_attempt":
        return attempt(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plot", metavar="CSV", help="only summarize and draw an existing curve")
    ap.add_argument("--input", help="DeePMD-kit input.json of the downstream model")
    ap.add_argument("--pretrained")
    ap.add_argument("--branch", default=None, help="branch of a multi-task pretrained model")
    ap.add_argument("--system", action="append", help="downstream training system")
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
    ap.add_argument("--numb_steps", type=int, default=1000, help="steps of a first attempt")
    ap.add_argument("--max_steps", type=int, default=8000,
                    help="no attempt longer than this (a run not converged by then is kept, "
                         "marked converged=False)")
    ap.add_argument("--out", default="finetune_curve")
    args = ap.parse_args()
    if args.plot:
        return summarize(read_rows(args.plot), args.plot[:-4] if args.plot.endswith(".csv")
                         else args.plot)
    for need in ("input", "pretrained", "system"):
        if not getattr(args, need):
            ap.error(f"--{need} is required (or --plot CSV)")
    if not args.valid and not args.valid_last:
        raise SystemExit("give --valid SYSTEM or --valid_last N")
    if args.numb_steps < 5 or args.numb_steps % 5:
        raise SystemExit(f"--numb_steps {args.numb_steps}: give a multiple of 5 (a checkpoint "
                         "at 80 % of the steps is compared with the last)")
    modes = args.modes.split(",")
    retain = _pairs(args.retain, ",")
    if "multitask" in modes and not retain:
        raise SystemExit("--modes multitask needs --retain HEAD=SYSTEM")
    retain_valid = {}
    for head, spec in _pairs(args.retain_valid, "\0").items():
        systems, _, n = spec[0].partition(":")
        retain_valid[head] = ([os.path.abspath(x) for x in systems.split(",")],
                              int(n) if n else 10 ** 9)
    retain = {h: [os.path.abspath(x) for x in v] for h, v in retain.items()}
    with open(args.input) as f:
        base = json.load(f)
    sizes = ([("frames", int(x)) for x in args.frames.split(",")] if args.frames else
             [("fraction", float(x) / 100) for x in args.fractions.split(",")])
    seeds = [int(s) for s in args.seeds.split(",")]
    rows, failed, t_start = [], [], time.time()
    shared = tempfile.mkdtemp(prefix="curve-valid-")
    valid = [os.path.abspath(v) for v in args.valid or []]
    if not valid:
        valid = [os.path.join(shared, f"valid{i}") for i in range(len(args.system))]
        for src, dst in zip(args.system, valid):
            last_frames(src, dst, args.valid_last)
    from dpkeras.data.system import DeepmdSystem

    nvalid = sum(DeepmdSystem(v).nframes for v in valid)
    for seed in seeds:      # seed outermost: a curve stopped early has whole curves of seeds
        for kind, size in sizes:
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
                # lcurve.out's validation columns: at most 10 frames (display only; the
                # convergence check and the results evaluate every frame of ``valid``)
                cfg["training"]["validation_data"] = {"systems": valid, "batch_size": 1,
                                                      "numb_btch": min(nvalid, 10)}
                cfg["training"]["seed"] = seed
                spec = {"mode": mode, "config": cfg, "workdir": work,
                        "pretrained": args.pretrained, "branch": args.branch, "valid": valid,
                        "seed": seed, "retain": retain, "retain_valid": retain_valid,
                        "retain_prob": args.retain_prob}
                try:
                    res = train_converged(spec, args.numb_steps, args.max_steps)
                except RuntimeError as exc:
                    print(f"{nframes:5d} frames  {mode:9s}  seed {seed}  FAILED: {exc}",
                          flush=True)
                    failed.append((nframes, mode, seed))
                    continue
                (e, f), (e80, f80) = res["final"], res["at80"]
                row = {"frames": nframes, "mode": mode, "seed": seed, "rmse_e": e,
                       "rmse_f": f, "rmse_e_at80": e80, "rmse_f_at80": f80,
                       "steps": res["steps"], "attempts": res["attempts"],
                       "converged": res["converged"], "last20_change": res["change"],
                       "seconds": res["seconds"]}
                for head, ((eb, fb), (ea, fa)) in res["forgetting"].items():
                    row.update({f"{head}_rmse_f_before": fb, f"{head}_rmse_f_after": fa,
                                f"{head}_rmse_e_before": eb, f"{head}_rmse_e_after": ea})
                rows.append(row)
                write_rows(rows, args.out + ".csv")   # after every run: a stopped curve keeps them
                print(f"{nframes:5d} frames  {mode:9s}  seed {seed}  energy {e:.4e} eV/atom  "
                      f"force {f:.4e} eV/A  {res['steps']} steps, last-20% change "
                      f"{res['change']:.1%}{'' if res['converged'] else ' (NOT converged)'}  "
                      f"{row['seconds']:.0f} s" + "".join(
                          f"  {h}: force {fb:.4f} -> {fa:.4f}"
                          for h, ((_, fb), (_, fa)) in res["forgetting"].items()), flush=True)
                shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(shared, ignore_errors=True)
    print(f"{time.time() - t_start:.0f} s of wall time")
    if rows:
        summarize(rows, args.out)
    if failed:
        raise SystemExit(f"{len(failed)} runs failed (frames, mode, seed): {failed}")


if __name__ == "__main__":
    main()
