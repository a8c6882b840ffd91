"""``python -m dpkeras.show MODEL ATTRIBUTE [ATTRIBUTE ...]``: what a model is, as ``dp show``.

Attributes: ``model-branch`` (the branches: one per head of a multi-task model, the one branch
``Default`` of a single-head model, plus ``RANDOM``), ``type-map``, ``descriptor``,
``fitting-net`` (the normalized config sections, per head) and ``size`` (parameter counts).
``MODEL``: anything :func:`dpkeras.load.load_model` reads (a multi-task run or united
SavedModel too), or a model zoo name.
"""

import json

import numpy as np

from dpkeras.errors import DPKerasError

ATTRIBUTES = ("model-branch", "type-map", "descriptor", "fitting-net", "size")


def _count(variables):
    return int(sum(np.prod(v.shape) for v in variables))


def describe(path, attributes):
    """The lines ``dpkeras.show`` prints for ``attributes`` of the model at ``path``."""
    from dpkeras.finetune import RANDOM, resolve_pretrained
    from dpkeras.load import load_heads

    bad = [a for a in attributes if a not in ATTRIBUTES]
    if bad:
        raise DPKerasError(f"unknown attribute(s) {bad}; choose from {list(ATTRIBUTES)}")
    # one entry per head; single-head models have one, named as DeePMD-kit's default branch
    heads, kind = load_heads(resolve_pretrained(path))
    lines = [f"{path}: a {'multi' if len(heads) > 1 else 'single'}-task model ({kind})"]
    for attr in attributes:
        for name, m in heads.items():
            where = f" of branch {name}" if len(heads) > 1 else ""
            cfg = m.get_config_deepmd()
            if attr == "model-branch" and name == next(iter(heads)):
                lines.append(f"Available model branches are {list(heads) + [RANDOM]}, where "
                             f"'{RANDOM}' means using a randomly initialized fitting net.")
            elif attr == "type-map":
                lines.append(f"The type_map{where} is {m.get_type_map()}")
            elif attr == "descriptor":
                lines.append(f"The descriptor parameter{where} is "
                             f"{json.dumps(cfg['descriptor'])}")
            elif attr == "fitting-net":
                lines.append(f"The fitting_net parameter{where} is "
                             f"{json.dumps(cfg['fitting_net'])}")
            elif attr == "size":
                nd, nf = _count(m.descriptor.weights), _count(m.fitting.weights)
                lines.append(f"Parameters{where} in descriptor: {nd:,}")
                lines.append(f"Parameters{where} in fitting-net: {nf:,}")
                lines.append(f"Parameters{where} in total: {nd + nf:,}")
    return lines


def main(argv):
    from dpkeras import cli

    cli.setup_logging("WARNING")
    if len(argv) < 3:
        raise DPKerasError("usage: python -m dpkeras.show MODEL ATTRIBUTE [ATTRIBUTE ...] "
                           f"with ATTRIBUTE in {list(ATTRIBUTES)}")
    print("\n".join(describe(argv[1], argv[2:])))


if __name__ == "__main__":
    from dpkeras import cli

    cli.run_main(main)
