"""Re-measure a zoo model's validation errors from its card.

``measure(name)`` evaluates the model on the card's ``validation.systems`` (paths relative to
the folder that holds the ``dpkeras`` package, i.e. the repository root or site-packages) and
returns ``{"nframes", "rmse_e_atom", "rmse_f"}``. ``validation.frames`` is ``"all"`` or
``"last N%"`` (the last N percent of each system's frames, at least one, as the recipe's
``split_data.py`` holds them out). Several systems are averaged as ``dp test`` /
``python -m dpkeras.test`` do: RMSEs weighted by frame counts.
"""

import os
import re

import numpy as np

from dpkeras.errors import DPKerasError


def frame_slice(frames, nframes):
    """The frames ``"all"`` / ``"last N%"`` select from a system of ``nframes`` frames."""
    if frames == "all":
        return slice(0, nframes)
    m = re.fullmatch(r"last (\d+(?:\.\d+)?)%", frames)
    if not m:
        raise DPKerasError(f"validation.frames {frames!r}: expected 'all' or 'last N%'")
    n = max(1, int(round(nframes * float(m.group(1)) / 100)))
    return slice(nframes - n, nframes)


def measure(name, model=None, head=None):
    """Validation errors of zoo model ``name`` (``model``: an already loaded one); for a model
    with several heads, of ``head`` on that head's validation data."""
    import dpkeras
    import dpkeras.zoo as zoo
    from dpkeras.data.system import DeepmdSystem
    from dpkeras.serving import SortedEvaluator   # what DeepPot.eval runs

    card = zoo.card(name)
    val = card["validation"]
    if val is None:
        raise DPKerasError(f"zoo model {name}: its card records no validation errors")
    if len(card["heads"]) > 1:
        if head not in val:
            raise DPKerasError(f"zoo model {name}: give head= one of {card['heads']}")
        val = val[head]
    model = model if model is not None else zoo.load(name, head=head)
    evaluate = SortedEvaluator(model)
    root = os.path.dirname(os.path.dirname(os.path.abspath(dpkeras.__file__)))
    total, se_e, se_f = 0, 0.0, 0.0
    for rel in val["systems"]:
        s = DeepmdSystem(os.path.join(root, rel), model.get_type_map())
        sl = frame_slice(val["frames"], s.nframes)
        coord, box = s.coord[sl], s.box[sl]
        n = len(coord)
        out = evaluate(coord.reshape(n, -1, 3), s.atype,
                       box.reshape(n, 3, 3) if s.pbc else np.zeros((n, 3, 3)), s.pbc, False)
        e, f = out["energy"], out["force"]
        de = (e.reshape(n) - s.labels["energy"][sl]) / s.natoms
        df = f.reshape(n, -1) - s.labels["force"][sl].reshape(n, -1)
        se_e += np.mean(de * de) * n
        se_f += np.mean(df * df) * n
        total += n
    return {"nframes": total, "rmse_e_atom": float(np.sqrt(se_e / total)),
            "rmse_f": float(np.sqrt(se_f / total))}
