"""``python -m dpkeras.freeze --checkpoint RUN_DIR --output MODEL``.

``MODEL`` is a SavedModel directory (servable without dpkeras: signatures ``serving_default``
(coord, atype, box) and ``serving_nopbc`` (coord, atype), metadata ``type_map``, ``rcut``,
``heads``, ``dpkeras_version``; see ``docs/serving.md``), or ``MODEL.keras`` / ``MODEL.dp``
(DeePMD-kit's format, convertible with ``dp convert-backend``). ``--checkpoint`` may also be any
model dpkeras can load (e.g. a ``.pb``), which converts between formats.

A multi-task run freezes one head with ``--head NAME`` (a single-task model), or every head
with ``--united_model`` (a SavedModel with one signature pair per head; ``docs/multitask.md``).
"""

from absl import flags

from dpkeras import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", ".", "training run / checkpoint directory (or any model)")
flags.DEFINE_string("output", "frozen_model", "SavedModel directory, or a .keras / .dp file")
cli.define_log_level()
flags.DEFINE_string("head", None, "multi-task model: freeze this head as a single-task model")
flags.DEFINE_bool("united_model", False, "multi-task model: freeze every head into one "
                  "SavedModel")


def freeze(source, output, head=None, united_model=False):
    """Write the model at ``source`` to ``output``; returns the source's kind."""
    from dpkeras.errors import DPKerasError
    from dpkeras.export import save_model, save_united
    from dpkeras.load import load, pick_head
    from dpkeras.multitask import MultiTaskModel

    from dpkeras.model.build import check_finite

    model, kind = load(source)
    check_finite(model, source)
    if not isinstance(model, MultiTaskModel):
        if united_model:
            raise DPKerasError(f"{source}: --united_model needs a multi-task model; this one "
                               "is single-task")
        save_model(pick_head(model, head, source), output)
        return kind
    if united_model:
        if head is not None:
            raise DPKerasError("give either --head NAME or --united_model, not both")
        if output.endswith((".dp", ".keras")):
            raise DPKerasError(f"{output}: a united model is a SavedModel directory; drop the "
                               "file suffix")
        save_united(model, output)
    elif head is None:
        raise DPKerasError(f"{source}: a multi-task model with heads {model.head_names()}; "
                           "freeze one with --head NAME, or all with --united_model")
    else:
        save_model(model.standalone_head(head), output)
    return kind


def main(argv):
    del argv
    log = cli.setup_logging(FLAGS.log_level)
    kind = freeze(FLAGS.checkpoint, FLAGS.output, FLAGS.head, FLAGS.united_model)
    log.info("froze %s (%s) to %s", FLAGS.checkpoint, kind, FLAGS.output)


if __name__ == "__main__":
    cli.run_main(main)
