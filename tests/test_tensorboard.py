"""DeePMD-kit's training.tensorboard and training.profiling keys: TensorBoard scalars and a
TensorFlow profile of a real (tiny) training run on water data."""

import glob
import os

import numpy as np
import tensorflow as tf

from conftest import WATER, small_input
from dpkeras.config import normalize
from dpkeras.trainer import Trainer


def _tags(logdir):
    out = {}
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for raw in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for v in event.summary.value:
                out.setdefault(v.tag, []).append(
                    (event.step, float(tf.make_ndarray(v.tensor))))
    return out


def test_tensorboard_scalars_and_profile_of_a_training_run(tmp_path):
    cfg = small_input(WATER[:1], WATER[3:], numb_steps=12, disp_freq=6, save_freq=12,
                      tensorboard=True, tensorboard_freq=2, profiling=True)
    cfg["model"]["descriptor"]["neuron"] = [4, 8]
    cfg["model"]["fitting_net"]["neuron"] = [8, 8]
    Trainer(normalize(cfg), str(tmp_path), skip_neighbor_stat=True, jit_compile=False).run()
    tags = _tags(str(tmp_path / "log"))
    assert [s for s, _ in tags["rmse_e_trn"]] == [2, 4, 6, 8, 10, 12]
    assert [s for s, _ in tags["rmse_f_val"]] == [6, 12]
    lr = dict(tags["learning_rate"])
    assert 0 < lr[12] < lr[2] < 0.003   # the exponential schedule, logged every 2 steps
    # the training column of lcurve.out and TensorBoard hold the same numbers
    rows = np.loadtxt(tmp_path / "lcurve.out")
    step12 = rows[rows[:, 0] == 12][0]
    assert np.isclose(dict(tags["rmse_f_trn"])[12], step12[6], rtol=5e-3)   # %.2e there
    assert glob.glob(str(tmp_path / "timeline" / "**" / "*.xplane.pb"), recursive=True)
