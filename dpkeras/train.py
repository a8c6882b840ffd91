"""``python -m dpkeras.train --flagfile=FILE`` (or flags on the command line).

With no ``--input``, trains the embedded quickstart (DeePMD-kit's water se_e2_a example, 2000
steps, ``dpkeras/examples/quickstart``) on the shipped real DFT water data. Relative system paths in input.json are taken relative to the current
directory, or to the input file's directory when they do not exist there.
"""

import os

from absl import flags

from dpkeras import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "DeePMD-kit input.json (default: the embedded water example)")
flags.DEFINE_string("output_dir", ".", "where checkpoints, lcurve.out and logs are written")
flags.DEFINE_string("restart", None, "resume from this run (or checkpoint) directory")
flags.DEFINE_string("init_model", None, "initialize weights from a model (any format)")
flags.DEFINE_bool("skip_neighbor_stat", False, "skip the neighbor statistics over the data")
flags.DEFINE_string("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR")
flags.DEFINE_integer("numb_steps", None, "override training.numb_steps")
flags.DEFINE_bool("jit_compile", True, "compile training steps with XLA")

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
    config = resolve_systems(load_input(path), path)
    if FLAGS.numb_steps is not None:
        config["training"]["numb_steps"] = FLAGS.numb_steps
    Trainer(config, FLAGS.output_dir, restart=FLAGS.restart, init_model=FLAGS.init_model,
            skip_neighbor_stat=FLAGS.skip_neighbor_stat, jit_compile=FLAGS.jit_compile).run()


if __name__ == "__main__":
    cli.run_main(main)
