"""Nothing lost, nothing silently wrong: each fault of the reliability sweep gets a clear error
(naming the file, key or variable and the fix) or a warning, and leaves the run directory as it
was. Small config: se_e2_a neuron [4, 8], fitting [8, 8], 6 frames of the real water data_0.
The table in docs/reliability.md lists every fault with the test that checks it."""

import copy
import fcntl
import logging
import os
import shutil

import numpy as np
import pytest

from conftest import WATER, small_input
from dpkeras import checkpoint
from dpkeras.config import load_input, normalize
from dpkeras.data.system import DeepmdSystem
from dpkeras.errors import DPKerasError
from dpkeras.rundir import LOCK
from dpkeras.trainer import Trainer


def _system(tmp_path, name="sys", frames=6, edit=None):
    """A copy of 6 frames of water data_0; ``edit(arrays)`` may change them first."""
    src, out = WATER[0], tmp_path / name
    (out / "set.000").mkdir(parents=True)
    for f in ("type.raw", "type_map.raw"):
        shutil.copy(os.path.join(src, f), out / f)
    arrays = {k: np.load(os.path.join(src, "set.000", f"{k}.npy"))[:frames]
              for k in ("coord", "box", "energy", "force")}
    if edit is not None:
        edit(arrays)
    for k, v in arrays.items():
        np.save(out / "set.000" / f"{k}.npy", v)
    return str(out)


def _config(systems, numb_steps=2, **training):
    cfg = small_input(systems, numb_steps=numb_steps, disp_freq=1, save_freq=1, **training)
    cfg["model"]["descriptor"]["neuron"] = [4, 8]
    cfg["model"]["fitting_net"]["neuron"] = [8, 8]
    return cfg


def _train(cfg, out, **kw):
    kw.setdefault("skip_neighbor_stat", True)
    return Trainer(normalize(copy.deepcopy(cfg)), str(out), jit_compile=False, **kw).run()


def _snapshot(path):
    """``{relative path: bytes}`` of every file under ``path`` but the lock file."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            if f == LOCK:
                continue
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = fh.read()
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-step run (checkpoints ckpt-1, ckpt-2) on 6 real frames."""
    tmp = tmp_path_factory.mktemp("rel")
    cfg = _config([_system(tmp)])
    _train(cfg, tmp / "run")
    return cfg, tmp / "run"


def _copy_run(trained, tmp_path):
    cfg, run = trained
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return cfg, dst


# --- run directories -------------------------------------------------------------------------
def test_new_run_into_another_runs_directory_is_refused_and_changes_nothing(trained, tmp_path):
    cfg, run = _copy_run(trained, tmp_path)
    before = _snapshot(run)
    other = copy.deepcopy(cfg)
    other["model"]["descriptor"]["neuron"] = [6, 12]
    with pytest.raises(DPKerasError, match=r"holds another run \(checkpoints ckpt-1, ckpt-2\); "
                                           r"continue it with --restart=.*--overwrite"):
        _train(other, run)
    assert _snapshot(run) == before


def test_overwrite_replaces_the_old_run(trained, tmp_path):
    cfg, run = _copy_run(trained, tmp_path)
    _train(dict(cfg, training=dict(cfg["training"], numb_steps=1)), run, overwrite=True)
    assert checkpoint.list_steps(str(run)) == [1]


def test_second_writer_is_refused_naming_the_holder(trained, tmp_path):
    cfg, _ = trained
    out = tmp_path / "busy"
    out.mkdir()
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT)
    os.write(fd, b"424242\n")
    fcntl.flock(fd, fcntl.LOCK_EX)          # another process's lock, as far as flock goes
    try:
        with pytest.raises(DPKerasError, match=r"another training \(pid 424242\) is writing"):
            _train(cfg, out)
    finally:
        os.close(fd)
    assert sorted(os.listdir(out)) == [LOCK]


def test_refused_restart_names_the_keys_and_changes_nothing(trained, tmp_path):
    cfg, run = _copy_run(trained, tmp_path)
    before = _snapshot(run)
    other = copy.deepcopy(cfg)
    other["model"]["descriptor"]["neuron"] = [6, 12]
    with pytest.raises(DPKerasError, match=r"model\.descriptor\.neuron: run \[4, 8\] vs "
                                           r"input\.json \[6, 12\]"):
        _train(other, run, restart=str(run))
    assert _snapshot(run) == before


def test_restart_skips_a_corrupt_newest_checkpoint(trained, tmp_path, caplog):
    cfg, run = _copy_run(trained, tmp_path)
    newest = checkpoint.resolve(str(run))
    data = [f for f in os.listdir(newest) if f.startswith("ckpt.data")][0]
    with open(os.path.join(newest, data), "r+b") as f:
        f.truncate(10)
    with caplog.at_level(logging.WARNING, logger="dpkeras"):
        ckpt, meta = checkpoint.read_meta(str(run))
    assert os.path.basename(ckpt) == "ckpt-1" and meta["step"] == 1
    assert "checksum mismatch" in caplog.text and "ckpt-2" in caplog.text
    shutil.rmtree(newest)        # deleted, as the first error said: restart still works
    _train(dict(cfg, training=dict(cfg["training"], numb_steps=3)), run, restart=str(run))
    assert max(checkpoint.list_steps(str(run))) == 3


# --- data ------------------------------------------------------------------------------------
@pytest.mark.parametrize("edit,match", [
    (lambda a: a["coord"].__setitem__((2, 5), np.nan),
     r"set\.000/coord\.npy: non-finite value \(NaN or inf\) in frame 2, atom 1"),
    (lambda a: a["force"].__setitem__((4, 30), np.inf),
     r"set\.000/force\.npy: non-finite value \(NaN or inf\) in frame 4, atom 10"),
    (lambda a: a["coord"].__setitem__((3, slice(9, 12)), a["coord"][3, 0:3]),
     r"frame 3: atoms 0 and 3 are 0 A apart \(closer than 0\.01 A\)"),
], ids=["nan_coord", "inf_force", "duplicate_atoms"])
def test_bad_values_in_data_are_refused_at_load(edit, match, tmp_path):
    path = _system(tmp_path, edit=edit)
    with pytest.raises(DPKerasError, match=match):
        DeepmdSystem(path, ["O", "H"])


def test_empty_type_raw_is_named(tmp_path):
    path = _system(tmp_path)
    open(os.path.join(path, "type.raw"), "w").close()
    with pytest.raises(DPKerasError, match=r"type\.raw is empty"):
        DeepmdSystem(path, ["O", "H"])


def test_far_too_large_sel_warns_and_is_refused_beyond_memory(tmp_path, caplog, monkeypatch):
    from dpkeras import stat

    cfg = _config([_system(tmp_path)], numb_steps=1)
    cfg["model"]["descriptor"]["sel"] = [400, 800]
    with caplog.at_level(logging.WARNING, logger="dpkeras"):
        _train(cfg, tmp_path / "a", skip_neighbor_stat=False)
    assert "sel [400, 800] is far above the largest neighbor counts in the data" in caplog.text
    monkeypatch.setattr(stat, "machine_memory", lambda: 2 ** 20)
    with pytest.raises(DPKerasError, match=r"model\.descriptor\.sel: .* GiB, more than this "
                                           r"machine's"):
        _train(cfg, tmp_path / "b", skip_neighbor_stat=False)


# --- training guard --------------------------------------------------------------------------
def test_non_finite_loss_stops_the_run_and_nothing_is_checkpointed(tmp_path):
    def huge(a):
        a["energy"] = a["energy"].astype(np.float64)
        a["energy"][3:] = 1e300        # finite labels whose squared error overflows
    cfg = _config([_system(tmp_path, edit=huge)], numb_steps=6)
    with pytest.raises(DPKerasError, match=r"step 1: the training loss is (inf|nan); the "
                                           r"training diverged and was stopped, no checkpoint "
                                           r"was written"):
        _train(cfg, tmp_path / "run")
    assert checkpoint.list_steps(str(tmp_path / "run")) == []


def test_freeze_and_test_refuse_non_finite_weights(trained, tmp_path):
    from dpkeras.export import save_model
    from dpkeras.freeze import freeze
    from dpkeras.load import load_model

    model, _ = load_model(str(trained[1]))
    w = model.fitting.nets[0].w_out
    w.assign(np.full(w.shape, np.nan))
    bad = str(tmp_path / "nan.keras")
    save_model(model, bad)
    with pytest.raises(DPKerasError, match=r"nan\.keras: weight \S+ holds NaN or inf"):
        freeze(bad, str(tmp_path / "frozen"))
    assert not os.path.exists(tmp_path / "frozen")


# --- config ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path,value,match", [
    (("model", "descriptor", "neuron"), "4,8", r"descriptor\.neuron: expected a list, got "
                                               r"\"4,8\" \(str\); write \[4,8\]"),
    (("model", "descriptor", "rcut"), "6.0", r"descriptor\.rcut: expected a number, got "
                                             r"\"6\.0\" \(str\); write 6\.0 without quotes"),
    (("model", "fitting_net", "neuron"), [0, 8], r"fitting_net\.neuron: expected a list of "
                                                 r"positive integers"),
    (("learning_rate", "start_lr"), 0, r"learning_rate\.start_lr: expected a positive number"),
    (("learning_rate", "decay_steps"), 0, r"learning_rate\.decay_steps: expected a positive "
                                          r"integer"),
], ids=["neuron_string", "rcut_string", "zero_width", "start_lr_0", "decay_steps_0"])
def test_wrong_config_types_are_one_line_errors(path, value, match):
    cfg = _config(WATER[:1])
    holder = cfg
    for k in path[:-1]:
        holder = holder[k]
    holder[path[-1]] = value
    with pytest.raises(DPKerasError, match=match) as err:
        normalize(cfg)
    assert "\n" not in str(err.value)


def test_input_naming_a_directory_says_so(tmp_path):
    with pytest.raises(DPKerasError, match="is a directory; give the input.json file inside"):
        load_input(str(tmp_path))


# --- inference -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dp(trained):
    from dpkeras.infer import DeepPot

    return DeepPot(str(trained[1]))


def _frame():
    s = DeepmdSystem(WATER[0], ["O", "H"])
    order = np.argsort(s.sort_idx)
    return s.coord[:1, order], s.box[:1].reshape(1, 9), np.loadtxt(
        os.path.join(WATER[0], "type.raw"), dtype=int)


@pytest.mark.parametrize("change,match", [
    (lambda c, b, t: (c, np.zeros((1, 9)), t), r"cells of frame 0 has zero volume"),
    (lambda c, b, t: (np.where(np.arange(c.size).reshape(c.shape) == 7, np.nan, c), b, t),
     r"coords has a non-finite value \(frame 0, atom 2\)"),
    (lambda c, b, t: (c, b, t + 0.5), r"atom_types must be integer type indices"),
    (lambda c, b, t: (c[:, :0], b, t[:0]), r"atom_types is empty"),
    (lambda c, b, t: (c, b, t[:-1]), r"atom_types lists 191 atoms but coords has 576 values "
                                     r"\(192 atoms per frame\?\)"),
], ids=["zero_volume_cell", "nan_coord", "float_types", "no_atoms", "types_one_short"])
def test_bad_inference_inputs_are_clear_errors(dp, change, match):
    c, b, t = change(*_frame())
    with pytest.raises(DPKerasError, match=match):
        dp.eval(c, b, t)


def test_neighbors_beyond_sel_at_inference_are_reported_once(dp, caplog):
    c, b, t = _frame()
    small = b * 0.6          # compressed box: more neighbors than sel [46, 92]
    with caplog.at_level(logging.WARNING, logger="dpkeras"):
        dp.eval(c * 0.6, small, t)
        dp.eval(c * 0.6, small, t)
    lines = [r for r in caplog.records if "more than the model's sel" in r.getMessage()]
    assert len(lines) == 1 and "farthest are dropped" in lines[0].getMessage()


# --- zoo transport ---------------------------------------------------------------------------
def test_plain_http_mirror_needs_an_explicit_opt_in(monkeypatch):
    from dpkeras import zoo
    from dpkeras.zoo import download

    card = zoo.card("dpa1-oc2m")
    monkeypatch.setenv("DPKERAS_ZOO_MIRROR", "http://mirror.example.org/models")
    monkeypatch.delenv("DPKERAS_ZOO_ALLOW_HTTP", raising=False)
    with pytest.raises(DPKerasError, match=r"DPKERAS_ZOO_MIRROR=http://mirror\.example\.org/"
                                           r"models is plain http.*DPKERAS_ZOO_ALLOW_HTTP=1"):
        download._mirror_sources(card)
    monkeypatch.setenv("DPKERAS_ZOO_ALLOW_HTTP", "1")
    assert download._mirror_sources(card) == ["http://mirror.example.org/models/OC_10M.pb"]


def test_missing_mirror_directory_and_unwritable_cache_are_named(tmp_path, monkeypatch):
    from dpkeras import zoo
    from dpkeras.zoo import download

    card = dict(zoo.card("dpa1-oc2m"), sha256="0" * 64)
    monkeypatch.setenv("DPKERAS_ZOO_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(DPKerasError, match=r"DPKERAS_ZOO_MIRROR=.*nowhere: no such directory"):
        download._mirror_sources(card)
    blocker = tmp_path / "a_file"
    blocker.write_text("")          # a cache below a file cannot be created, even by root
    monkeypatch.setenv("DPKERAS_CACHE", str(blocker / "cache"))
    monkeypatch.delenv("DPKERAS_ZOO_MIRROR")
    with pytest.raises(DPKerasError, match=r"cannot write the download cache .*set "
                                           r"DPKERAS_CACHE to a writable directory \(now "):
        download.fetch_card(card)
