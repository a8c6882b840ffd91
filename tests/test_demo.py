"""``python -m dpkeras.demo`` (the README's main job): fine-tuning the shipped multi-task DPA-1
on a molecule it never saw beats training from scratch, on real DFT data."""

import json
import os
import subprocess
import sys

import pytest

from dpkeras import demo
from dpkeras.errors import DPKerasError


def test_finetuned_beats_scratch_on_an_unseen_molecule(tmp_path):
    """10 training frames of C4H3O1, 5 validating, 200 steps each (the demo runs 1000): the
    bias recalibration alone cuts the energy error, and the fine-tuned model's force error is
    a fraction of the from-scratch one."""
    out = tmp_path / "demo"
    r = demo.run_demo(str(out), 10, 200, "dpa1-mt-cho-water", "molecules", demo.SYSTEM)
    assert list(r) == ["pretrained model, before bias recalibration",
                       "pretrained model, after bias recalibration", "fine-tuned model",
                       "trained from scratch"]
    before, after = r["pretrained model, before bias recalibration"], \
        r["pretrained model, after bias recalibration"]
    assert after["rmse_e"] < before["rmse_e"]
    assert after["rmse_f"] == pytest.approx(before["rmse_f"])   # a bias moves no force
    assert r["fine-tuned model"]["rmse_f"] * 3 < r["trained from scratch"]["rmse_f"], r
    assert r["fine-tuned model"]["rmse_e"] < r["trained from scratch"]["rmse_e"], r
    assert json.loads((out / "results.json").read_text()) == r
    text = demo.table(r, 10, 5, 200, "dpa1-mt-cho-water", "molecules")
    assert "| fine-tuned model" in text and "| trained from scratch" in text
    with pytest.raises(DPKerasError, match="holds an earlier demo"):
        demo.run_demo(str(out), 10, 200, "dpa1-mt-cho-water", "molecules", demo.SYSTEM)


def test_demo_refuses_a_split_without_validation_frames(tmp_path):
    with pytest.raises(DPKerasError, match=r"--ntrain=15: .* has 15 frames; give 1..14"):
        demo.split(demo.SYSTEM, str(tmp_path), 15)


def test_shipped_multitask_model_lists_its_heads_as_branches(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dpkeras.show", "dpa1-mt-cho-water",
                          "model-branch"], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, DPKERAS_CACHE=str(tmp_path)))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "['molecules', 'water', 'RANDOM']" in out.stdout
