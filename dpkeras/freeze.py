"""``python -m dpkeras.freeze --checkpoint RUN_DIR --output MODEL``.

``MODEL`` is a SavedModel directory (servable without dpkeras: signatures ``serving_default``
(coord, atype, box) and ``serving_nopbc`` (coord, atype), metadata ``type_map``, ``rcut``,
``heads``, ``dpkeras_version``; see ``docs/serving.md``), or ``MODEL.keras`` / ``MODEL.dp``
(DeePMD-kit's format, convertible with ``dp convert-backend``). ``--checkpoint`` may also be any
model dpkeras can load (e.g. a ``.pb``), which converts between formats.
"""

from absl import flags

from dpkeras import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", ".", "training run / checkpoint directory (or any model)")
flags.DEFINE_string("output", "frozen_model", "SavedModel directory, or a .keras / .dp file")
flags.DEFINE_string("log_level", "INFO", "logging level")


def main(argv):
    del argv
    from dpkeras.export import save_model
    from dpkeras.model.load import load_model

    log = cli.setup_logging(FLAGS.log_level)
    model, kind = load_model(FLAGS.checkpoint)
    save_model(model, FLAGS.output)
    log.info("froze %s (%s) to %s", FLAGS.checkpoint, kind, FLAGS.output)


if __name__ == "__main__":
    cli.run_main(main)
