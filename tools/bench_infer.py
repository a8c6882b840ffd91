"""Benchmark: inference time of compressed and uncompressed models, dpkeras vs DeePMD-kit.

    python tools/bench_infer.py --vs-deepmd /path/to/deepmd-venv/bin/python
                                [--atoms 192,1536] [--repeat 10] [--stride 0.01]
    python tools/bench_infer.py --model frozen_model.pb      # dpkeras only

With ``--vs-deepmd``, DeePMD-kit's standard water se_e2_a model (tools/bench_train.py's config:
sel [46, 92], neuron [25, 50, 100], axis_neuron 16, fitting [240, 240, 240]; ``--descriptor
se_atten_v2``: its se_atten_v2 example, sel 120, attn_layer 0) is trained for a few
steps with ``dp --tf train``, frozen and compressed with ``dp --tf compress -s STRIDE``; the same
graph is compressed by ``dpkeras.compress`` at the same stride. Each of the four models evaluates
one frame of DFT water (data_3 frame 0, replicated to the requested sizes) ``--repeat`` times
after a warm-up, in the same run, with 2 threads; the median wall time per frame is printed,
with the ratios dpkeras / DeePMD-kit (below 1: dpkeras faster) and the largest force difference
between each compressed model and its original.

``--memory N``: also the peak resident memory (RSS) of one N-atom evaluation of each model, each
in a fresh process of its own code: the peak after loading the model (and a warm-up evaluation
of one water molecule) and the peak after the N-atom frame.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_train import CONFIG, DESCRIPTORS, WATER  # noqa: E402

# what --descriptor trains: DeePMD-kit's standard water se_e2_a, or its se_atten_v2 example
# (DPA-1 sized: sel 120, neuron [25, 50, 100], strip mode) with attn_layer 0, the only
# attention model DeePMD-kit's TF backend compresses
BENCH_DESCRIPTORS = {"se_e2_a": DESCRIPTORS["se_e2_a"],
                     "se_atten_v2": dict(DESCRIPTORS["se_atten_v2"], attn_layer=0)}

DEEPMD_EVAL = r"""
import sys, time, json, numpy as np
from deepmd.infer import DeepPot
out = {}
d = np.load(sys.argv[1])
for pb in sys.argv[3:]:
    dp = DeepPot(pb)
    res = {}
    for n in sys.argv[2].split(","):
        c, b, t = d["coord_" + n], d["box_" + n], d["type_" + n]
        f = dp.eval(c, b, t)[1]
        times = []
        for _ in range(int(d["repeat"])):
            t0 = time.perf_counter(); dp.eval(c, b, t); times.append(time.perf_counter() - t0)
        res[n] = {"ms": 1e3 * float(np.median(times)), "force": f.ravel()[:3000].tolist()}
    out[pb] = res
print("JSON" + json.dumps(out))
"""


# the peak of this process's own address space (VmHWM, KiB): ru_maxrss would not do, as Linux
# keeps it across exec, so a child started by a big parent reads at least the parent's size
MEMORY_EVAL = r"""
import sys, numpy as np
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
from MODULE import DeepPot
d, n = np.load(sys.argv[1]), sys.argv[2]
dp = DeepPot(sys.argv[3])
c, b, t = d["coord_" + n], d["box_" + n], d["type_" + n]
dp.eval(c[:, :9], b, t[:3])
loaded = hwm()
dp.eval(c, b, t)
print("RSS", loaded, hwm())
"""


def peak_rss(python, module, frames_npz, n, model, env):
    """``(MB after loading, MB peak of the evaluation)`` of one ``n``-atom frame, in a fresh
    process (Linux ``VmHWM``, KiB)."""
    r = subprocess.run([python, "-c", MEMORY_EVAL.replace("MODULE", module), frames_npz,
                        str(n), model], capture_output=True, text=True, env=env, check=True)
    loaded, peak = r.stdout.split("RSS", 1)[1].split()
    return int(loaded) / 1024, int(peak) / 1024


def frames(sizes, repeat):
    coord = np.load(os.path.join(WATER, "data_3", "set.000", "coord.npy"))[0].reshape(-1, 3)
    box = np.load(os.path.join(WATER, "data_3", "set.000", "box.npy"))[0].reshape(3, 3)
    atype = np.loadtxt(os.path.join(WATER, "data_3", "type.raw"), dtype=int)
    out = {"repeat": np.array(repeat)}
    for n in sizes:
        k = round((n / len(atype)) ** (1 / 3))
        if k ** 3 * len(atype) != n:
            raise SystemExit(f"--atoms {n}: not 192 x k^3")
        shifts = np.array([[i, j, l] for i in range(k) for j in range(k) for l in range(k)])
        c = (coord[None] + (shifts @ box)[:, None]).reshape(1, -1)
        out[f"coord_{n}"], out[f"box_{n}"] = c, (box * k).reshape(1, 9)
        out[f"type_{n}"] = np.tile(atype, k ** 3)
    return out


def time_dpkeras(model_path, data, sizes):
    from dpkeras.infer import DeepPot

    dp = DeepPot(model_path)
    res = {}
    for n in sizes:
        c, b, t = data[f"coord_{n}"], data[f"box_{n}"], data[f"type_{n}"]
        f = dp.eval(c, b, t)[1]
        times = []
        for _ in range(int(data["repeat"])):
            t0 = time.perf_counter()
            dp.eval(c, b, t)
            times.append(time.perf_counter() - t0)
        res[str(n)] = {"ms": 1e3 * float(np.median(times)), "force": f.ravel()[:3000].tolist()}
    return res


def deepmd_models(python, workdir, stride, descriptor="se_e2_a"):
    cfg = json.loads(json.dumps(CONFIG))
    cfg["model"]["descriptor"] = dict(BENCH_DESCRIPTORS[descriptor])
    cfg["training"].update(numb_steps=20, disp_freq=10, save_freq=20)
    with open(os.path.join(workdir, "input.json"), "w") as f:
        json.dump(cfg, f)
    dp = os.path.join(os.path.dirname(python), "dp")
    env = dict(os.environ, OMP_NUM_THREADS="2", TF_INTRA_OP_PARALLELISM_THREADS="2",
               TF_INTER_OP_PARALLELISM_THREADS="1", DP_INTRA_OP_PARALLELISM_THREADS="2",
               DP_INTER_OP_PARALLELISM_THREADS="1")
    for cmd in ([dp, "--tf", "train", "input.json"], [dp, "--tf", "freeze", "-o", "orig.pb"],
                [dp, "--tf", "compress", "-i", "orig.pb", "-o", "compressed.pb", "-s",
                 str(stride)]):
        subprocess.run(cmd, cwd=workdir, env=env, check=True, capture_output=True)
    return os.path.join(workdir, "orig.pb"), os.path.join(workdir, "compressed.pb"), env


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a model dpkeras reads (without --vs-deepmd)")
    p.add_argument("--vs-deepmd", metavar="PYTHON", help="python of a DeePMD-kit venv")
    p.add_argument("--atoms", default="192,1536")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--stride", type=float, default=0.01)
    p.add_argument("--memory", type=int, metavar="N", help="peak RSS of one N-atom evaluation")
    p.add_argument("--descriptor", choices=sorted(BENCH_DESCRIPTORS), default="se_e2_a",
                   help="with --vs-deepmd: the model trained (se_atten_v2: attn_layer 0)")
    a = p.parse_args()
    sizes = [int(x) for x in a.atoms.split(",")]      # timed; --memory's size only measured
    work = tempfile.mkdtemp(prefix="bench_infer_")
    data = frames(sorted(set(sizes) | ({a.memory} if a.memory else set())), a.repeat)
    np.savez(os.path.join(work, "frames.npz"), **data)
    from dpkeras.compress import compress

    if a.vs_deepmd:
        orig, theirs, env = deepmd_models(a.vs_deepmd, work, a.stride, a.descriptor)
    else:
        orig, theirs, env = a.model, None, os.environ
    mine = os.path.join(work, "dpkeras_compressed")
    compress(orig, mine, [os.path.join(WATER, "data_3")], stride=a.stride)
    rows = {"dpkeras": time_dpkeras(orig, data, sizes),
            "dpkeras compressed": time_dpkeras(mine, data, sizes)}
    if theirs:
        r = subprocess.run([a.vs_deepmd, "-c", DEEPMD_EVAL, os.path.join(work, "frames.npz"),
                            a.atoms, orig, theirs], capture_output=True, text=True, env=env, check=True)
        got = json.loads(r.stdout.split("JSON", 1)[1])
        rows["DeePMD-kit"], rows["DeePMD-kit compressed"] = got[orig], got[theirs]
    print(f"{'model':<24}" + "".join(f"{n:>12} atoms" for n in sizes))
    for name, res in rows.items():
        print(f"{name:<24}" + "".join(f"{res[str(n)]['ms']:>15.1f} ms" for n in sizes))
    if theirs:
        for n in map(str, sizes):
            r0 = rows["dpkeras"][n]["ms"] / rows["DeePMD-kit"][n]["ms"]
            r1 = rows["dpkeras compressed"][n]["ms"] / rows["DeePMD-kit compressed"][n]["ms"]
            print(f"{n} atoms: dpkeras/DeePMD-kit {r0:.2f}, compressed {r1:.2f}")
    for name, base in (("dpkeras compressed", "dpkeras"),
                       ("DeePMD-kit compressed", "DeePMD-kit")):
        if name in rows:
            for n in map(str, sizes):
                f0, f1 = np.array(rows[base][n]["force"]), np.array(rows[name][n]["force"])
                print(f"{name} vs {base}, {n} atoms: max force difference "
                      f"{np.abs(f1 - f0).max() / np.abs(f0).max():.1e} (relative)")
    if a.memory:
        npz = os.path.join(work, "frames.npz")
        models = [("dpkeras", sys.executable, "dpkeras.infer", orig),
                  ("dpkeras compressed", sys.executable, "dpkeras.infer", mine)]
        if theirs:
            models += [("DeePMD-kit", a.vs_deepmd, "deepmd.infer", orig),
                       ("DeePMD-kit compressed", a.vs_deepmd, "deepmd.infer", theirs)]
        for name, python, module, path in models:
            loaded, peak = peak_rss(python, module, npz, a.memory, path, env)
            print(f"{name:<24} peak RSS, {a.memory} atoms: {peak:8.0f} MB "
                  f"(after loading: {loaded:.0f} MB)")


if __name__ == "__main__":
    main()
