"""``python -m dpkeras.demo``: what pretraining buys, in one command (the README's main job).

The zoo model ``dpa1-mt-cho-water`` (a DPA-1 pretrained by dpkeras' multi-task training on C/H/O
molecules and on liquid water, one head each) is fine-tuned on a few frames of a molecule it never
saw, C4H3O1 (DeePMD-kit's ``examples/nopbc`` data, shipped in ``dpkeras/examples/data``), from its
``molecules`` branch; the same architecture is trained from scratch on the same frames for the
same number of steps. All are validated on the remaining frames, and the table shows:

(a) the pretrained branch as it is, and after the energy-bias recalibration on the training
    frames (no training: what ``dp change-bias`` gives);
(b) the fine-tuned model;
(c) the model trained from scratch.

Flags: ``--output_dir`` (default ``demo``), ``--ntrain`` (training frames, default 10; the rest
of the 15 validate), ``--numb_steps`` (default 1000, a few minutes on 2 cores), ``--pretrained``
and ``--model_branch`` (any pretrained model and branch), ``--system``. Everything written
(data split, both runs, ``input.json``, ``results.json``) stays in ``--output_dir``.
"""

import json
import os
import time

from absl import flags

from dpkeras import cli
from dpkeras.errors import DPKerasError

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM = os.path.join(HERE, "examples", "data", "nopbc", "C4H3O1")
INPUT = os.path.join(HERE, "examples", "finetune_unseen", "input.json")

FLAGS = flags.FLAGS


def _define_flags():
    flags.DEFINE_string("output_dir", "demo", "where the data split, runs and results go")
    flags.DEFINE_integer("ntrain", 10, "training frames (the first ones); the rest validate")
    flags.DEFINE_integer("numb_steps", 1000, "training steps of each run")
    flags.DEFINE_string("pretrained", "dpa1-mt-cho-water", "pretrained model (zoo name or path)")
    flags.DEFINE_string("model_branch", "molecules", "its branch to fine-tune from")
    flags.DEFINE_string("system", SYSTEM, "the downstream system (DeePMD-kit npy)")
    flags.DEFINE_bool("overwrite", False, "replace an earlier demo in --output_dir")
    cli.define_log_level()


def split(system, out_dir, ntrain):
    """``(train, valid)`` systems under ``out_dir/data``: the first ``ntrain`` frames, the rest."""
    from dpkeras.data.system import DeepmdSystem, write_frames

    n = DeepmdSystem(system).nframes
    if not 0 < ntrain < n:
        raise DPKerasError(f"--ntrain={ntrain}: {system} has {n} frames; give 1..{n - 1}")
    train, valid = (os.path.abspath(os.path.join(out_dir, "data", p)) for p in ("train", "valid"))
    write_frames(system, train, range(ntrain))
    write_frames(system, valid, range(ntrain, n))
    return train, valid


def run_demo(out_dir, ntrain, numb_steps, pretrained, branch, system, overwrite=False, log=None):
    """Fine-tune and train from scratch; returns ``{what: {"rmse_e", "rmse_f", "seconds"}}``."""
    from dpkeras.data.pipeline import DataSystems
    from dpkeras.finetune import load_finetune_input, validation_error
    from dpkeras.trainer import Trainer

    if os.path.exists(os.path.join(out_dir, "results.json")) and not overwrite:
        raise DPKerasError(f"{out_dir} holds an earlier demo (results.json); give --overwrite "
                           "or another --output_dir")
    train, valid = split(system, out_dir, ntrain)
    with open(INPUT) as fh:
        cfg = json.load(fh)
    cfg["training"]["training_data"]["systems"] = [train]
    cfg["training"]["validation_data"]["systems"] = [valid]
    cfg["training"]["numb_steps"] = numb_steps
    inp = os.path.join(out_dir, "input.json")
    with open(inp, "w") as fh:
        json.dump(cfg, fh, indent=2)
    config, spec = load_finetune_input(inp, pretrained, branch, use_pretrain_script=True)
    results = {}
    t0 = time.perf_counter()
    Trainer(config, os.path.join(out_dir, "finetune"), finetune=spec, overwrite=overwrite).run()
    seconds = time.perf_counter() - t0
    for what, (e, f) in spec.errors.items():
        results[what] = {"rmse_e": e, "rmse_f": f, "seconds": seconds if what.startswith(
            "fine-tuned") else 0.0}
    t0 = time.perf_counter()
    scratch = Trainer(config, os.path.join(out_dir, "scratch"), overwrite=overwrite).run()
    seconds = time.perf_counter() - t0
    data = DataSystems({"systems": [valid], "batch_size": 1}, scratch.get_type_map())
    e, f = validation_error(scratch, data, nframes=10 ** 9)
    results["trained from scratch"] = {"rmse_e": e, "rmse_f": f, "seconds": seconds}
    from dpkeras.atomic import atomic_write_text

    atomic_write_text(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    return results


def table(results, ntrain, nvalid, numb_steps, pretrained, branch):
    lines = [f"C4H3O1 (never seen in pretraining): {ntrain} training frames, {nvalid} validation "
             f"frames, {numb_steps} steps per run; pretrained {pretrained}, branch {branch}",
             "",
             f"| {'model':45s} | energy RMSE (eV/atom) | force RMSE (eV/A) | training time (s) |",
             f"|{'-' * 47}|{'-' * 23}|{'-' * 19}|{'-' * 19}|"]
    for what, r in results.items():
        lines.append(f"| {what:45s} | {r['rmse_e']:21.4f} | {r['rmse_f']:17.4f} | "
                     f"{r['seconds']:17.0f} |")
    return "\n".join(lines)


def main(argv):
    del argv
    log = cli.setup_logging(FLAGS.log_level)
    from dpkeras.data.system import DeepmdSystem

    results = run_demo(FLAGS.output_dir, FLAGS.ntrain, FLAGS.numb_steps, FLAGS.pretrained,
                       FLAGS.model_branch, FLAGS.system, FLAGS.overwrite, log)
    nvalid = DeepmdSystem(FLAGS.system).nframes - FLAGS.ntrain
    print(table(results, FLAGS.ntrain, nvalid, FLAGS.numb_steps, FLAGS.pretrained,
                FLAGS.model_branch))


if __name__ == "__main__":
    _define_flags()
    cli.run_main(main)
