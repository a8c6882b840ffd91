"""tf.distribute: MultiWorkerMirroredStrategy over two processes on loopback (one frame each)
gives the learning curve and weights of one process with the same global batch (two frames),
for multi-task and single-task training."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, WATER, small_input
from dpkeras.config import normalize
from dpkeras.errors import DPKerasError
from test_multitask import tf_style


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start_workers(inp, out_dirs):
    ports = _free_ports(len(out_dirs))
    procs = []
    for i, out in enumerate(out_dirs):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps({
            "cluster": {"worker": [f"localhost:{p}" for p in ports]},
            "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dpkeras.train", f"--input={inp}", f"--output_dir={out}",
             "--skip_neighbor_stat", "--nojit_compile"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def _wait(procs):
    for p in procs:
        out = p.communicate(timeout=300)[0]
        assert p.returncode == 0, out[-3000:]


def _lcurve(run):
    lines = open(os.path.join(run, "lcurve.out")).read().splitlines()
    rows = [[float(x) for x in ln.split()] for ln in lines if not ln.startswith("#")]
    return np.array(rows)


def _check_weights(a, b):
    assert len(a) == len(b) > 10
    for x, y in zip(a, b):
        assert x.path == y.path
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-9, atol=1e-12, err_msg=x.path)


def test_two_workers_match_one_worker(tmp_path):
    from dpkeras.load import load_model
    from dpkeras.load import load
    from dpkeras.trainer import Trainer

    multi = tf_style(numb_steps=4)
    for d in multi["training"]["data_dict"].values():
        for section in d.values():
            section["batch_size"] = 2
    single = small_input(WATER[:2], WATER[3:], numb_steps=4, disp_freq=2, save_freq=2)
    single["training"]["training_data"]["batch_size"] = 2
    single["training"]["validation_data"]["batch_size"] = 2
    procs = []
    for name, cfg in (("multi", multi), ("single", single)):
        (tmp_path / f"{name}.json").write_text(json.dumps(cfg))
        procs += _start_workers(tmp_path / f"{name}.json",
                                [tmp_path / f"{name}_w0", tmp_path / f"{name}_w1"])
    Trainer(normalize(multi), str(tmp_path / "multi_one"), jit_compile=False,
                     skip_neighbor_stat=True).run()
    Trainer(normalize(single), str(tmp_path / "single_one"), jit_compile=False,
            skip_neighbor_stat=True).run()
    _wait(procs)
    for name in ("multi", "single"):
        assert not (tmp_path / f"{name}_w1").exists()   # only the chief writes
        np.testing.assert_allclose(_lcurve(tmp_path / f"{name}_w0"),
                                   _lcurve(tmp_path / f"{name}_one"), rtol=1e-9)
    _check_weights(load(str(tmp_path / "multi_w0"))[0].weights,
                   load(str(tmp_path / "multi_one"))[0].weights)
    _check_weights(load_model(str(tmp_path / "single_w0"))[0].weights,
                   load_model(str(tmp_path / "single_one"))[0].weights)


def test_batch_must_split_over_the_replicas():
    from dpkeras.trainer import Trainer

    class TwoReplicas:   # what the check reads of a strategy
        num_replicas_in_sync = 2
        cluster_resolver = None

    cfg = normalize(small_input(WATER[:1], numb_steps=1))
    cfg["training"]["training_data"]["batch_size"] = 3
    with pytest.raises(DPKerasError, match="training.training_data.batch_size: \\[3\\] frames "
                       "do not split over 2 replicas; use a multiple of 2"):
        Trainer(cfg, "unused", strategy=TwoReplicas())
