"""Benchmark: training step time and inference time of dpkeras, side by side with DeePMD-kit.

    python tools/bench_train.py [--descriptor se_e2_a|se_atten|se_atten_v2] [--steps 40]
                                [--frames 20] [--vs-deepmd /path/to/venv/bin/python]
                                [--precision float64|float32] [--multitask] [--full-lists]
                                [--infer-processes N]

Config: DeePMD-kit's standard water examples (batch 1, float64, the shipped water data):
``se_e2_a`` (sel [46, 92], neuron [25, 50, 100], axis_neuron 16), ``se_atten`` (DPA-1: sel 120,
neuron [25, 50, 100], axis_neuron 16, attn 128, attn_layer 2, attn_dotr) or ``se_atten_v2``
(the same in strip mode with the smooth type embedding), all with the fitting net
[240, 240, 240]. With ``--vs-deepmd`` the same config is trained with ``dp --tf train``
(DeePMD-kit's TF backend, its C++ ops) in the same run, its frozen graph is timed with DeePMD-kit's ``DeepPot`` and also loaded
into dpkeras to check the numbers are identical; ratios dpkeras / DeePMD-kit are printed (below 1
means dpkeras is faster). Training is timed twice per code: dpkeras' loop over its compiled steps
against DeePMD-kit's per-interval wall time, and each code's own step timer (the ``average
training time`` line both training logs end with); DeePMD-kit is also trained with the allocator
settings dpkeras' trainer makes (:mod:`dpkeras.allocator`, as glibc variables), so the gain they
bring is not mistaken for one DeePMD-kit could not have. Build the DeePMD-kit venv with
``shared/tools/deepmd-venv.sh``.
``--full-lists`` also times dpkeras on untrimmed neighbor lists (every ``sel`` slot, as DeePMD-kit
computes them), the ablation of :func:`dpkeras.nlist.trim_type_blocks` /
:func:`dpkeras.nlist.trim_padding`.
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WATER = os.path.join(HERE, "..", "dpkeras", "examples", "data", "water")

CONFIG = {
    "model": {
        "type_map": ["O", "H"],
        "descriptor": {"type": "se_e2_a", "sel": [46, 92], "rcut_smth": 0.5, "rcut": 6.0,
                       "neuron": [25, 50, 100], "resnet_dt": False, "axis_neuron": 16,
                       "seed": 1},
        "fitting_net": {"neuron": [240, 240, 240], "resnet_dt": True, "seed": 1},
    },
    "learning_rate": {"type": "exp", "decay_steps": 5000, "start_lr": 0.001, "stop_lr": 3.51e-8},
    "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000,
             "limit_pref_f": 1, "start_pref_v": 0, "limit_pref_v": 0},
    "training": {"training_data": {"systems": [os.path.join(WATER, f"data_{i}")
                                               for i in range(3)], "batch_size": 1},
                 "numb_steps": 1000, "seed": 10, "disp_freq": 10, "save_freq": 100000},
}

DESCRIPTORS = {
    "se_e2_a": CONFIG["model"]["descriptor"],
    "se_atten": {"type": "se_atten", "sel": 120, "rcut_smth": 0.5, "rcut": 6.0,
                 "neuron": [25, 50, 100], "resnet_dt": False, "axis_neuron": 16, "seed": 1,
                 "attn": 128, "attn_layer": 2, "attn_dotr": True, "attn_mask": False},
}
# DeePMD-kit's examples/water/se_atten_v2 descriptor (strip mode, smooth type embedding)
DESCRIPTORS["se_atten_v2"] = dict(DESCRIPTORS["se_atten"], type="se_atten_v2",
                                  set_davg_zero=False)

DEEPMD_INFER = r"""
import sys, time, json, numpy as np
from deepmd.infer import DeepPot
dp = DeepPot(sys.argv[1])
d = np.load(sys.argv[2])
n = int(sys.argv[3])
dp.eval(d["coord"][:1], d["box"][:1], d["atype"])
t = time.time()
for i in range(n):
    dp.eval(d["coord"][i % len(d["coord"])][None], d["box"][i % len(d["coord"])][None], d["atype"])
print(json.dumps({"infer_s": (time.time() - t) / n}))
"""


def config_for(descriptor):
    cfg = json.loads(json.dumps(CONFIG))
    cfg["model"]["descriptor"] = dict(DESCRIPTORS[descriptor])
    return cfg


def time_steps(train_step, head, batches, steps):
    """s/step of the compiled ``train_step`` over ``batches`` (10 warm-up steps, then
    ``steps`` timed)."""
    for _ in range(10):  # warm up: tracing / compilation
        m = train_step(head, next(batches))
    float(m["rmse"])
    t = time.time()
    for b in batches:
        m = train_step(head, b)
    float(m["rmse"])
    return (time.time() - t) / steps


def bench_dpkeras(cfg, steps, frames, trim=True):
    """``train_s`` (s/step) and ``infer_s`` (s/frame); ``trim=False``: full neighbor lists."""
    from dpkeras.config import normalize
    from dpkeras.nlist import batch_args
    from dpkeras.serving import SortedEvaluator
    from dpkeras.trainer import Trainer

    cfg = normalize(json.loads(json.dumps(cfg)))
    cfg["training"]["numb_steps"] = steps + 10
    tr = Trainer(cfg, tempfile.mkdtemp(), skip_neighbor_stat=True)
    model, opt, _ = tr.build()
    train_step, _ = tr.make_steps(model, opt)
    d = model.descriptor
    (head, data), = tr.train_data.items()
    args = batch_args(d) if trim else dict(batch_args(d), trim=None)
    train_s = time_steps(train_step, head, iter(data.dataset(tr.seed, 0, steps + 10, **args)),
                         steps)
    evaluate = SortedEvaluator(model, trim=trim)   # what DeepPot.eval runs
    s = data.systems[0]
    evaluate(s.coord[:1], s.atype, s.box[:1], True, False)
    t = time.time()
    for i in range(frames):
        evaluate(s.coord[i % s.nframes][None], s.atype, s.box[i % s.nframes][None], True, False)
    return {"train_s": train_s, "infer_s": (time.time() - t) / frames}


def own_timer(log_text, who):
    """The ``average training time`` a training log reports (DeePMD-kit's line, which dpkeras'
    trainer writes too): s/step of the training steps alone, after the first display interval."""
    found = re.findall(r"average training time: ([0-9.eE+-]+) s/(?:batch|step)", log_text)
    if not found:
        raise SystemExit(f"no 'average training time' line in {who}'s training log")
    return float(found[-1])


def train_dpkeras(cfg, steps):
    """s/step by dpkeras' own step timer: a full ``Trainer.run`` (display every 10 steps,
    as in the DeePMD-kit run), its ``average training time`` log line."""
    from dpkeras.config import normalize
    from dpkeras.trainer import Trainer

    cfg = normalize(json.loads(json.dumps(cfg)))
    cfg["training"].update(numb_steps=steps + 10, disp_freq=10, save_freq=steps + 10)
    out = tempfile.mkdtemp(prefix="bench-dpkeras-")
    logging.getLogger("dpkeras").setLevel(logging.INFO)   # train.log gets what `dp train` logs
    Trainer(cfg, out, skip_neighbor_stat=True).run()
    with open(os.path.join(out, "train.log")) as f:
        return own_timer(f.read(), "dpkeras")


def bench_multitask(cfg, steps):
    """Seconds per training step of each head of a two-head model (the config's descriptor,
    its fitting net twice, the same data): the step of one head runs that head only."""
    from dpkeras.config import normalize
    from dpkeras.trainer import Trainer, _StepSubset
    from dpkeras.nlist import batch_args

    m, t = cfg["model"], cfg["training"]
    heads = {"head_a": m["fitting_net"], "head_b": dict(m["fitting_net"], seed=2)}
    mt = {"model": {"type_map": m["type_map"], "descriptor": m["descriptor"],
                    "fitting_net_dict": heads},
          "learning_rate": cfg["learning_rate"], "loss_dict": {h: cfg["loss"] for h in heads},
          "training": {"numb_steps": steps + 10, "seed": t["seed"],
                       "data_dict": {h: {"training_data": t["training_data"]} for h in heads}}}
    tr = Trainer(normalize(json.loads(json.dumps(mt))), tempfile.mkdtemp(),
                 skip_neighbor_stat=True)
    model, opt, _ = tr.build()
    train_step, _ = tr.make_steps(model, opt)
    d = model.descriptor
    out = {}
    for h in tr.heads:
        it = iter(_StepSubset(tr.train_data[h], list(range(steps + 10))).dataset(
            tr.seed, **batch_args(d)))
        out[h] = time_steps(train_step, h, it, steps)
    return out


def train_deepmd(cfg, python, steps, workdir, env=None):
    """``(s/step by the log's per-interval wall time, s/step by its 'average training time')``
    of ``dp --tf train`` on ``cfg`` in ``workdir``; ``env``: extra environment variables."""
    dp = os.path.join(os.path.dirname(python), "dp")
    cfg = json.loads(json.dumps(cfg))
    cfg["training"]["numb_steps"] = steps + 10
    cfg["training"]["disp_freq"] = 10
    cfg["training"]["save_freq"] = steps + 10
    with open(os.path.join(workdir, "input.json"), "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    res = subprocess.run([dp, "--tf", "train", "input.json"], cwd=workdir, env=env,
                         capture_output=True, text=True)
    if res.returncode:
        raise SystemExit("dp train failed:\n" + res.stderr[-3000:])
    times = [float(x) for x in re.findall(r"Batch\s+\d+: total wall time = ([0-9.eE+-]+) s",
                                          res.stderr + res.stdout)]
    # each entry covers disp_freq = 10 steps; drop the first interval (graph warm-up)
    if len(times) < 2:
        raise SystemExit("could not read DeePMD-kit's step times from its log:\n"
                         + res.stderr[-2000:])
    return float(np.mean(times[1:])) / 10, own_timer(res.stderr + res.stdout, "DeePMD-kit")


def bench_deepmd(cfg, python, steps, frames, workdir):
    dp = os.path.join(os.path.dirname(python), "dp")
    train_s, own_s = train_deepmd(cfg, python, steps, workdir)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([dp, "--tf", "freeze", "-o", "frozen_model.pb"], cwd=workdir, env=env,
                   capture_output=True, check=True)
    from dpkeras.data.system import DeepmdSystem

    s = DeepmdSystem(os.path.join(WATER, "data_3"), ["O", "H"])
    np.savez(os.path.join(workdir, "frames.npz"), coord=s.coord.reshape(s.nframes, -1),
             box=s.box.reshape(s.nframes, 9), atype=s.atype)
    script = os.path.join(workdir, "infer.py")
    with open(script, "w") as f:
        f.write(DEEPMD_INFER)
    out = subprocess.run([python, script, "frozen_model.pb", "frames.npz", str(frames)],
                         cwd=workdir, env=env, capture_output=True, text=True, check=True)
    infer_s = json.loads(out.stdout.strip().splitlines()[-1])["infer_s"]
    return {"train_s": train_s, "own_s": own_s, "infer_s": infer_s,
            "pb": os.path.join(workdir, "frozen_model.pb"), "frames": s}


DPKERAS_INFER = DEEPMD_INFER.replace("from deepmd.infer import DeepPot",
                                     "from dpkeras.infer import DeepPot")


def infer_processes(pb, workdir, python, n, frames):
    """ms/frame of both codes evaluating the same frozen graph ``pb`` frame by frame, each in
    ``n`` fresh processes, alternating (a process's inference speed on these machines is
    bimodal, for both codes: one process is one sample)."""
    times, scripts = {"dpkeras": [], "DeePMD-kit": []}, {}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for who, code in [("dpkeras", DPKERAS_INFER), ("DeePMD-kit", DEEPMD_INFER)]:
        scripts[who] = os.path.join(workdir, f"infer_{who}.py")
        with open(scripts[who], "w") as f:
            f.write(code)
    for who, py in [("dpkeras", sys.executable), ("DeePMD-kit", python)] * n:
        script = scripts[who]
        out = subprocess.run([py, script, pb, "frames.npz", str(frames)], cwd=workdir, env=env,
                             capture_output=True, text=True, check=True)
        times[who].append(json.loads(out.stdout.strip().splitlines()[-1])["infer_s"] * 1e3)
    return times


def parity(pb, s, python, workdir):
    """Max relative difference of dpkeras vs DeePMD-kit on the same frozen graph."""
    from dpkeras.infer import DeepPot

    e, f, v = DeepPot(pb).eval(s.coord[:2].reshape(2, -1), s.box[:2].reshape(2, 9), s.atype)
    code = ("import numpy as np,sys; from deepmd.infer import DeepPot; d=np.load('frames.npz');"
            "e,f,v=DeepPot('frozen_model.pb').eval(d['coord'][:2],d['box'][:2],d['atype']);"
            "np.savez('ref.npz',e=e,f=f,v=v)")
    subprocess.run([python, "-c", code], cwd=workdir, check=True, capture_output=True,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    r = np.load(os.path.join(workdir, "ref.npz"))
    rel = lambda a, b: float(np.max(np.abs(a - b)) / np.max(np.abs(b)))  # noqa: E731
    return {"energy": rel(e, r["e"]), "force": rel(f.reshape(r["f"].shape), r["f"]),
            "virial": rel(v, r["v"])}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--descriptor", choices=sorted(DESCRIPTORS), default="se_e2_a")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--vs-deepmd", metavar="PYTHON", help="python of a DeePMD-kit venv")
    p.add_argument("--precision", choices=["float64", "float32"], default="float64",
                   help="precision of the descriptor, type embedding and fitting networks "
                   "(both codes; DeePMD-kit's `precision` keys)")
    p.add_argument("--mixed_precision", choices=["float16", "bfloat16"], default=None,
                   help="training.mixed_precision compute_prec (output_prec float32), both "
                   "codes")
    p.add_argument("--multitask", action="store_true", help="also time each head's step of a "
                   "two-head multi-task model")
    p.add_argument("--infer-processes", type=int, default=0, metavar="N", help="with "
                   "--vs-deepmd: also time both codes' DeepPot on DeePMD-kit's frozen graph in N "
                   "fresh processes each")
    p.add_argument("--full-lists", action="store_true", help="also time dpkeras on untrimmed "
                   "neighbor lists (the ablation of the trimmed ones)")
    a = p.parse_args()
    cfg = config_for(a.descriptor)
    if a.precision != "float64":
        for sec in ("descriptor", "fitting_net"):
            cfg["model"][sec]["precision"] = a.precision
        if a.descriptor.startswith("se_atten"):
            cfg["model"]["type_embedding"] = {"precision": a.precision}
    if a.mixed_precision:
        cfg["training"]["mixed_precision"] = {"output_prec": "float32",
                                              "compute_prec": a.mixed_precision}
    ours = bench_dpkeras(cfg, a.steps, a.frames)
    print(f"{a.descriptor}: water, 192 atoms, {a.precision}"
          + (f", mixed_precision {a.mixed_precision}" if a.mixed_precision else ""))
    print(f"dpkeras     train {ours['train_s']:.4f} s/step   infer {ours['infer_s'] * 1e3:.1f} "
          "ms/frame (192 atoms, neighbor list included)")
    if a.full_lists:
        full = bench_dpkeras(cfg, a.steps, a.frames, trim=False)
        print(f"full lists  train {full['train_s']:.4f} s/step   infer "
              f"{full['infer_s'] * 1e3:.1f} ms/frame (dpkeras, every sel slot computed)")
    if a.multitask:
        for head, sec in bench_multitask(cfg, a.steps).items():
            print(f"multi-task  train {sec:.4f} s/step of {head} (two heads; "
                  f"{sec / ours['train_s']:.2f} x the single-task step)")
    if a.vs_deepmd:
        work = tempfile.mkdtemp(prefix="bench-deepmd-")
        ref = bench_deepmd(cfg, a.vs_deepmd, a.steps, a.frames, work)
        print(f"DeePMD-kit  train {ref['train_s']:.4f} s/step   infer "
              f"{ref['infer_s'] * 1e3:.1f} ms/frame")
        print(f"ratio dpkeras/DeePMD-kit: train {ours['train_s'] / ref['train_s']:.2f}   "
              f"infer {ours['infer_s'] / ref['infer_s']:.2f}")
        own = train_dpkeras(cfg, a.steps)
        print(f"own step timers ('average training time' in each training log): dpkeras "
              f"{own:.4f}, DeePMD-kit {ref['own_s']:.4f} s/step, ratio {own / ref['own_s']:.2f}")
        # DeePMD-kit given the allocator settings dpkeras' trainer makes (dpkeras.allocator)
        from dpkeras import allocator
        tuned = train_deepmd(cfg, a.vs_deepmd, a.steps, tempfile.mkdtemp(prefix="bench-deepmd-"),
                             {"MALLOC_MMAP_THRESHOLD_": str(allocator.MMAP_THRESHOLD),
                              "MALLOC_TOP_PAD_": str(allocator.TOP_PAD)})
        print(f"DeePMD-kit with dpkeras' allocator settings (glibc variables): train "
              f"{tuned[0]:.4f} s/step, own timer {tuned[1]:.4f}; ratios dpkeras/that "
              f"{ours['train_s'] / tuned[0]:.2f}, own timers {own / tuned[1]:.2f}")
        print("same frozen graph, dpkeras vs DeePMD-kit max rel diff:",
              json.dumps(parity(ref["pb"], ref["frames"], a.vs_deepmd, work)))
        if a.infer_processes:
            t = infer_processes(ref["pb"], work, a.vs_deepmd, a.infer_processes, a.frames)
            for who, ms in t.items():
                print(f"{who:<11} DeepPot.eval of the same frozen graph, ms/frame per process: "
                      + ", ".join(f"{x:.1f}" for x in ms) + f"  (mean {np.mean(ms):.1f})")
            print(f"ratio of the means: infer {np.mean(t['dpkeras']) / np.mean(t['DeePMD-kit']):.2f}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
