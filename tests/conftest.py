import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite evaluates hundreds of models a few times each: without XLA it runs in a fraction of
# the time, and XLA's compiled code (kept for the life of a process) does not pile up in the
# workers. The tests named *xla* check the compiled path against the same references;
# DPKERAS_JIT_COMPILE=1 runs the whole suite with XLA.
os.environ.setdefault("DPKERAS_JIT_COMPILE", "0")

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.join(HERE, "data")
ROOT = os.path.dirname(HERE)
EXAMPLE_DATA = os.path.join(ROOT, "dpkeras", "examples", "data")
WATER = [os.path.join(EXAMPLE_DATA, "water", f"data_{i}") for i in range(4)]
NOPBC = [os.path.join(EXAMPLE_DATA, "nopbc", n) for n in ("C1H4O2", "C3H3O4", "C4H3O1")]


def max_rel(a, b):
    """max |a - b| / max |b| over all entries."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def small_input(train, valid=None, numb_steps=20, **training):
    """A small se_e2_a water input (fast on CPU), DeePMD-kit keys."""
    cfg = {
        "model": {
            "type_map": ["O", "H"],
            "descriptor": {"type": "se_e2_a", "sel": [46, 92], "rcut_smth": 0.5, "rcut": 6.0,
                           "neuron": [8, 16, 32], "axis_neuron": 4, "seed": 1},
            "fitting_net": {"neuron": [32, 32], "resnet_dt": True, "seed": 1},
        },
        "learning_rate": {"type": "exp", "decay_steps": 50, "start_lr": 0.003,
                          "stop_lr": 1e-4},
        "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000,
                 "limit_pref_f": 1, "start_pref_v": 0, "limit_pref_v": 0},
        "training": {"training_data": {"systems": list(train), "batch_size": "auto"},
                     "numb_steps": numb_steps, "seed": 7, "disp_freq": 10, "save_freq": 10},
    }
    if valid:
        cfg["training"]["validation_data"] = {"systems": list(valid), "batch_size": 1,
                                              "numb_btch": 2}
    cfg["training"].update(training)
    return cfg


@pytest.fixture
def water_input():
    return small_input(WATER[:3], WATER[3:])
