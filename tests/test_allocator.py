"""The trainer's step timing: glibc keeps freed step buffers mapped (``dpkeras.allocator``) and
the log's ``average training time`` (``dpkeras.lcurve.StepTimer``)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, WATER
from dpkeras import allocator
from dpkeras.errors import DPKerasError
from dpkeras.lcurve import StepTimer

# DeePMD-kit's standard water se_e2_a step (tools/bench_train.py): buffers of 17 MB and more
FAULTS_PER_STEP = r"""
import json, os, resource, sys, tempfile
sys.path.insert(0, os.path.join(sys.argv[1], "tools"))
import bench_train
from dpkeras.config import normalize
from dpkeras.nlist import batch_args
from dpkeras.trainer import Trainer

cfg = normalize(bench_train.config_for("se_e2_a"))
cfg["training"]["numb_steps"] = 14
tr = Trainer(cfg, tempfile.mkdtemp(), skip_neighbor_stat=True)
model, opt, _ = tr.build()
train_step, _ = tr.make_steps(model, opt)
(head, data), = tr.train_data.items()
batches = iter(data.dataset(tr.seed, 0, 14, **batch_args(model.descriptor)))   # as trained
for _ in range(4):   # tracing, compilation, first touches
    float(train_step(head, next(batches))["rmse"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for b in batches:
    float(train_step(head, b)["rmse"])
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10))
"""


def _faults_per_step(tune):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", DPKERAS_MALLOC_TUNE=tune)
    for v in allocator.USER_VARIABLES:
        env.pop(v, None)
    res = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, ROOT], env=env,
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_training_steps_stop_page_faulting_their_buffers():
    default, tuned = _faults_per_step("0"), _faults_per_step("1")
    # measured: ~24,800 (100 MB of fresh pages per step) against ~40
    assert default > 5000, default
    assert tuned < 0.05 * default, (tuned, default)


def test_allocator_switch_and_the_users_own_settings(monkeypatch):
    monkeypatch.setattr(allocator, "_done", None)
    monkeypatch.setenv(allocator.ENV, "sometimes")
    with pytest.raises(DPKerasError, match="DPKERAS_MALLOC_TUNE='sometimes'"):
        allocator.keep_freed_memory()
    monkeypatch.setattr(allocator, "_done", None)
    monkeypatch.setenv(allocator.ENV, "0")
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(allocator, "_done", None)
    monkeypatch.setenv(allocator.ENV, "1")
    monkeypatch.setenv("MALLOC_TOP_PAD_", "0")   # the user's choice is kept
    assert allocator.keep_freed_memory() is False


def test_average_training_time_leaves_out_the_first_display_interval():
    t = StepTimer(skip=10)
    for i in range(30):
        t.add(i, 5.0 if i < 10 else 1.0)
    assert t.average() == (1.0, 10)
    short = StepTimer(skip=10)   # not more than twice the skip: every step counts
    for i in range(20):
        short.add(i, 3.0 if i < 10 else 1.0)
    assert short.average() == (2.0, 0)


def test_training_log_reports_the_average_training_time(tmp_path):
    from conftest import small_input

    inp = tmp_path / "input.json"
    inp.write_text(json.dumps(small_input(WATER[:1], numb_steps=30, disp_freq=10,
                                          save_freq=30)))
    res = subprocess.run([sys.executable, "-m", "dpkeras.train", f"--input={inp}",
                          f"--output_dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert res.returncode == 0, res.stderr[-2000:]
    log = (tmp_path / "run" / "train.log").read_text()
    assert "average training time: " in log
    assert "s/step (excluding the first 10 steps, display and checkpoints)" in log
