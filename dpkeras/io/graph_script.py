"""A frozen graph's stored training script (``train_attr/training_script``), checked against
the architecture read from the graph itself (:func:`dpkeras.io.graph_arch.infer_model`): the
graph decides every number, the script adds what the graph cannot show (``seed``, ``trainable``,
loss and training keys), and any disagreement is an error naming the key."""

import numpy as np

from dpkeras.errors import DPKerasError

_SCALARS = ("rcut", "rcut_smth")
# keys a stored script may lack that the graph decides: compression tables; the type
# embedding's bias (DeePMD-kit < 3 always has one, its scripts have no key for it)
_FILL = ("tabulated", "use_tebd_bias")


def _canon(key, value):
    if key == "activation_function":
        return {"none": "linear", None: "linear"}.get(value, str(value).lower())
    if key == "precision":
        return "float64" if value in (None, "default") else value
    if key == "type":   # se_atten_v2 is se_atten in strip mode with the smooth type embedding
        return {"se_atten_v2": "se_atten", "se_a": "se_e2_a", "se_r": "se_e2_r", "se_t": "se_e3", "se_a_3be": "se_e3",
                "dpa1": "se_atten", "se_a_tebd": "se_e2_a", "se_a_ebd_v2": "se_e2_a"
                }.get(value, value)
    if key == "exclude_types":
        return sorted(sorted(p) for p in value)
    return value


def _same(key, a, b):
    if key in _SCALARS:
        return np.float32(a) == np.float32(b)
    return _canon(key, a) == _canon(key, b)


def merge_with_script(path, graph_model, script_model, where="model"):
    """The stored script's model section with every value the graph determines checked against
    it (a disagreement is an error naming both) and filled where the script leaves it out."""
    out = dict(script_model)
    for key, gval in graph_model.items():
        if key not in out:   # the script's release had no such key: its default held, except
            if key in _FILL:   # where the graph shows what the script could not say
                out[key] = gval
            elif key == "type_embedding" and gval.get("use_tebd_bias"):
                out[key] = gval   # an absent section means no bias today; < 3.0 had one
            continue
        if out[key] is None:   # the script's default (e.g. ln_eps null)
            continue
        sval = out[key]
        if key == "list" and isinstance(gval, list):
            if not isinstance(sval, list) or len(sval) != len(gval):
                raise DPKerasError(f"{path}: {where}.list: the training script has "
                                   f"{len(sval)} hybrid members, the graph {len(gval)}")
            out[key] = [merge_with_script(path, gv, sv, f"{where}.list[{i}]")
                        for i, (gv, sv) in enumerate(zip(gval, sval))]
        elif isinstance(gval, dict):
            out[key] = merge_with_script(path, gval, sval if isinstance(sval, dict) else {},
                                         f"{where}.{key}")
        elif key == "sel" and isinstance(sval, str):   # "auto" resolved at training time
            out[key] = gval
        elif key == "sel" and isinstance(sval, int) and isinstance(gval, list):
            if sum(gval) != sval:
                _disagree(path, f"{where}.{key}", sval, gval)
        elif key == "sel" and isinstance(sval, list) and isinstance(gval, int):
            if sum(sval) != gval:
                _disagree(path, f"{where}.{key}", sval, gval)
        elif key == "neuron" and "tabulated" in graph_model:   # a table knows its last width
            if list(sval)[-1] != gval[-1]:
                _disagree(path, f"{where}.{key}", sval, gval)
        elif key == "type_map" and isinstance(gval, list) and gval[0].startswith("type_"):
            continue   # a graph without model_attr/tmap: the script names the types
        elif not _same(key, sval, gval):
            _disagree(path, f"{where}.{key}", sval, gval)
    if out.get("type") == "se_atten_v2":   # fixed in se_atten_v2, not keys of it
        for key, want in (("tebd_input_mode", "strip"), ("smooth_type_embedding", True)):
            if out.pop(key, want) != want:
                _disagree(path, f"{where}.{key}", want, not want)
        out.pop("stripped_type_embedding", None)
    return out


def _disagree(path, key, script, graph):
    raise DPKerasError(f"{path}: {key}: the training script stored in the graph says {script!r} "
                       f"but the graph itself has {graph!r}; the file is inconsistent (was it "
                       "edited?)")
