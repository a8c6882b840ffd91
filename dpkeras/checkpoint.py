"""Atomic, verified training checkpoints.

A run directory holds ``checkpoints/ckpt-STEP/`` (a ``tf.train.Checkpoint`` of the model, the
optimizer and the step, plus ``model.json`` with the model config and ``MANIFEST.json`` with the
sha256 of every file) and ``checkpoints/latest`` naming the newest complete one. A run reads the
newest checkpoint that verifies (:func:`newest_valid`).

Writes go to a temporary directory that is renamed into place only when complete, and the
``latest`` pointer is replaced atomically, so a run killed at any moment leaves the previous
checkpoint intact. Reads verify every checksum first: a truncated or corrupt checkpoint is a
clear error, never silently wrong weights.
"""

import hashlib
import json
import logging
import os
import shutil

import tensorflow as tf

from dpkeras.atomic import atomic_dir, atomic_write_text
from dpkeras.errors import DPKerasError

CKPT_DIR = "checkpoints"
log = logging.getLogger("dpkeras")


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _trackables(model, optimizer=None):
    """Every weight of the model (by path) and of the optimizer (in creation order).

    Keras 3 keeps sub-layers in its own tracker, which TF's object graph does not follow into
    lists and dicts, so the variables are named explicitly.
    """
    out = {"model": {v.path: v for v in model.weights}}
    if len(out["model"]) != len(model.weights):
        raise RuntimeError("model weight paths are not unique")
    if optimizer is not None:
        out["optimizer"] = list(optimizer.variables)
    return out


def save(run_dir, step, model, optimizer, model_config, keep=5):
    """Write checkpoint ``ckpt-STEP`` atomically; keep the newest ``keep``. Returns its path."""
    root = os.path.join(run_dir, CKPT_DIR)
    final = os.path.join(root, f"ckpt-{step}")
    with atomic_dir(final) as tmp:
        tf.train.Checkpoint(**_trackables(model, optimizer)).write(os.path.join(tmp, "ckpt"))
        with open(os.path.join(tmp, "model.json"), "w") as f:
            json.dump({"step": int(step), "model": model_config}, f, indent=1)
        manifest = {name: _sha256(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))}
        with open(os.path.join(tmp, "MANIFEST.json"), "w") as f:
            json.dump(manifest, f, indent=1)
    atomic_write_text(os.path.join(root, "latest"), f"ckpt-{step}\n")
    steps = sorted(list_steps(run_dir))
    for old in steps[:-keep] if keep and keep > 0 else []:
        shutil.rmtree(os.path.join(root, f"ckpt-{old}"), ignore_errors=True)
    return final


def list_steps(run_dir):
    root = os.path.join(run_dir, CKPT_DIR)
    if not os.path.isdir(root):
        return []
    return [int(n[5:]) for n in os.listdir(root) if n.startswith("ckpt-") and n[5:].isdigit()]


def resolve(path):
    """A run directory or a ``ckpt-STEP`` directory -> the checkpoint directory to read (the
    one ``latest`` names; not verified)."""
    if os.path.isfile(os.path.join(path, "MANIFEST.json")):
        return path
    root = os.path.join(path, CKPT_DIR)
    pointer = os.path.join(root, "latest")
    if not os.path.isfile(pointer):
        raise DPKerasError(f"{path}: no checkpoint found (expected {pointer}); is this a "
                           "dpkeras training output directory?")
    with open(pointer) as f:
        return os.path.join(root, f.read().strip())


def newest_valid(path):
    """The checkpoint to read from a run or checkpoint directory, verified: a checkpoint
    directory itself, or the one ``latest`` names; when that one is missing, truncated or
    corrupt, the newest earlier checkpoint that verifies, with a warning naming what was skipped
    and why."""
    first = resolve(path)
    if os.path.isfile(os.path.join(path, "MANIFEST.json")):
        verify(first)
        return first
    root = os.path.join(path, CKPT_DIR)
    candidates = [first] + [os.path.join(root, f"ckpt-{s}")
                            for s in sorted(list_steps(path), reverse=True)]
    skipped, seen = [], set()
    for ckpt in candidates:
        if ckpt in seen:
            continue
        seen.add(ckpt)
        try:
            if not os.path.isdir(ckpt):
                raise DPKerasError(f"{os.path.join(root, 'latest')} names "
                                   f"{os.path.basename(ckpt)}, which does not exist")
            verify(ckpt)
        except DPKerasError as exc:
            skipped.append(str(exc))
            continue
        for why in skipped:
            log.warning("skipped a checkpoint: %s", why)
        if skipped:
            log.warning("using %s, the newest valid checkpoint of %s", ckpt, path)
        return ckpt
    raise DPKerasError(skipped[0] if len(skipped) == 1 else
                       f"{path}: no valid checkpoint: " + "; ".join(skipped))


def verify(ckpt):
    """Check every file against ``MANIFEST.json``; raise a clear error on any mismatch."""
    mpath = os.path.join(ckpt, "MANIFEST.json")
    try:
        with open(mpath) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError):
        raise DPKerasError(f"{mpath}: missing or unreadable; the checkpoint {ckpt} is "
                           "incomplete (delete it to fall back to an earlier one)") from None
    for name, digest in manifest.items():
        p = os.path.join(ckpt, name)
        if not os.path.isfile(p) or _sha256(p) != digest:
            raise DPKerasError(f"{p}: checksum mismatch, the checkpoint is truncated or corrupt; "
                               f"delete {ckpt} to resume from an earlier checkpoint")


def read_meta(path):
    """``(checkpoint dir, {"step", "model"})`` of a run or checkpoint directory, verified."""
    ckpt = newest_valid(path)
    with open(os.path.join(ckpt, "model.json")) as f:
        return ckpt, json.load(f)


def restore(ckpt, model, optimizer=None):
    """Restore the verified checkpoint ``ckpt`` into the model (and the optimizer)."""
    status = tf.train.Checkpoint(**_trackables(model, optimizer)).read(
        os.path.join(ckpt, "ckpt"))
    if optimizer is None:
        status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise DPKerasError(f"{ckpt}: the checkpoint does not hold this model's weights (it was "
                           "written for another model config or by an incompatible dpkeras "
                           "version)") from None
    return status


def check_restart(path, model_config):
    """``(checkpoint, meta)`` of a ``--restart`` from ``path`` with the model section
    ``model_config``, or an error naming every key that differs."""
    from dpkeras.config import differences

    ckpt, meta = read_meta(path)
    diffs = differences(meta["model"], model_config, "model")
    if diffs:
        shown = "; ".join(f"{p}: run {json.dumps(a)} vs input.json {json.dumps(b)}"
                          for p, a, b in diffs[:10])
        more = f"; and {len(diffs) - 10} more" if len(diffs) > 10 else ""
        raise DPKerasError(f"{path}: --restart needs the model section the run was trained "
                           f"with; it differs: {shown}{more}")
    return ckpt, meta
