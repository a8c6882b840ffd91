"""``python -m dpkeras.train --flagfile=FILE`` (or flags on the command line).

With no ``--input``, trains the embedded quickstart (DeePMD-kit's water se_e2_a example, 2000
steps, ``dpkeras/examples/quickstart``) on the shipped real DFT water data. Relative system paths in input.json are taken relative to the current
directory, or to the input file's directory when they do not exist there.

``--finetune PRETRAINED [--model_branch NAME|RANDOM] [--use_pretrain_script]`` fine-tunes a
pretrained model (:mod:`dpkeras.finetune`, ``docs/finetune.md``).
"""

import os

from absl import flags

from dpkeras import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "DeePMD-kit input.json (default: the embedded water example)")
flags.DEFINE_string("output_dir", ".", "where checkpoints, lcurve.out and logs are written")
flags.DEFINE_string("restart", None, "resume from this run (or checkpoint) directory")
flags.DEFINE_bool("overwrite", False, "replace another run found in --output_dir (its "
                  "checkpoints and learning curve); without it that is refused")
flags.DEFINE_string("init_model", None, "initialize weights from a model (any format)")
flags.DEFINE_bool("skip_neighbor_stat", False, "skip the neighbor statistics over the data")
cli.define_log_level()
flags.DEFINE_integer("numb_steps", None, "override training.numb_steps")
flags.DEFINE_bool("jit_compile", None, "compile training steps with XLA (default: on, unless "
                  "the environment sets DPKERAS_JIT_COMPILE=0)")
flags.DEFINE_string("finetune", None, "fine-tune from this pretrained model (any format dpkeras "
                    "loads, or a model zoo name)")
flags.DEFINE_string("model_branch", None, "with --finetune: the branch (head) of the pretrained "
                    "model, or RANDOM for a new fitting net on the pretrained descriptor")
flags.DEFINE_bool("mirrored", False, "train on all local GPUs (tf.distribute.MirroredStrategy); "
                  "with TF_CONFIG naming several workers, MultiWorkerMirroredStrategy is used")
flags.DEFINE_string("init_frz_model", None, "multi-task: start from this multi-task model (united "
                    "SavedModel or run); empty heads and descriptor in input.json are taken "
                    "from it")
flags.DEFINE_bool("use_pretrain_script", False, "with --finetune: take the descriptor, "
                  "type_embedding and fitting_net sections from the pretrained model")

EXAMPLE_INPUT = os.path.join(os.path.dirname(__file__), "examples", "quickstart", "input.json")


def resolve_systems(config, input_path):
    """Make relative system paths absolute (cwd first, else relative to input.json)."""
    base = os.path.dirname(os.path.abspath(input_path))
    t = config["training"]
    for key in ("training_data", "validation_data"):
        section = t.get(key)
        if not section:
            continue
        out = []
        for p in section["systems"]:
            fname = p.partition("#")[0]
            if not os.path.isabs(fname) and not os.path.exists(fname) and \
                    os.path.exists(os.path.join(base, fname)):
                p = os.path.join(base, p)
            out.append(p)
        section["systems"] = out
    return config


def main(argv):
    del argv
    from dpkeras.config import load_input
    from dpkeras.trainer import Trainer

    cli.setup_logging(FLAGS.log_level)
    path = FLAGS.input or EXAMPLE_INPUT
    spec = None
    if FLAGS.finetune:
        from dpkeras.finetune import load_finetune_input

        config, spec = load_finetune_input(path, FLAGS.finetune, FLAGS.model_branch,
                                           FLAGS.use_pretrain_script)
    elif FLAGS.model_branch or FLAGS.use_pretrain_script:
        from dpkeras.errors import DPKerasError

        raise DPKerasError("--model_branch and --use_pretrain_script need --finetune PRETRAINED")
    elif FLAGS.init_frz_model:
        from dpkeras.load import load_input_from_frozen

        config = load_input_from_frozen(path, FLAGS.init_frz_model)
    else:
        config = load_input(path)
    if FLAGS.numb_steps is not None:
        config["training"]["numb_steps"] = FLAGS.numb_steps
    from dpkeras.distribute import strategy_from_env
    from dpkeras.config import is_multitask

    if spec is not None and (FLAGS.mirrored or os.environ.get("TF_CONFIG")):
        from dpkeras.errors import DPKerasError

        raise DPKerasError("--finetune under tf.distribute (TF_CONFIG, --mirrored) is not "
                           "implemented yet")
    strategy = None if spec is not None else strategy_from_env(FLAGS.mirrored)   # before
    if is_multitask(config):                                 # TensorFlow runs any op
        for section in config["training"]["data_dict"].values():
            resolve_systems({"training": section}, path)
    else:
        config = resolve_systems(config, path)
    Trainer(config, FLAGS.output_dir, restart=FLAGS.restart,
            init_model=FLAGS.init_model or FLAGS.init_frz_model,
            skip_neighbor_stat=FLAGS.skip_neighbor_stat, jit_compile=FLAGS.jit_compile,
            finetune=spec, strategy=strategy, overwrite=FLAGS.overwrite).run()


if __name__ == "__main__":
    cli.run_main(main)
