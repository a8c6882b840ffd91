"""The ``.dp`` file: DeePMD-kit's serialized model dict in its HDF5 container, with the
envelope DeePMD-kit writes (``software``, ``version``, ``time``, ``backend``,
``model_def_script``). The dict itself is each kind's own business
(:meth:`dpkeras.model.ener.DeepmdModel.serialize`, :func:`dpkeras.model.build.deserialize`)."""

import datetime

from dpkeras import __version__
from dpkeras.errors import DPKerasError
from dpkeras.io.dp.h5 import load_dict, save_dict


def read_dp(path):
    """DeePMD-kit's serialized model dict of the ``.dp`` file at ``path``."""
    m = load_dict(path).get("model")
    if not isinstance(m, dict):
        raise DPKerasError(f"{path}: no 'model' in the .dp file")
    return m


def _precisions(node):
    if isinstance(node, dict):
        if isinstance(node.get("precision"), str):
            yield node["precision"]
        for v in node.values():
            yield from _precisions(v)
    elif isinstance(node, list):
        for v in node:
            yield from _precisions(v)


def write_dp(model, path, model_def_script=None):
    """Write ``model`` (an ``EnergyModel`` or a dipole ``TensorModel``) as a DeePMD-kit ``.dp``
    file (atomically); what DeePMD-kit cannot read back is refused, naming ``path``."""
    try:
        model_dict = model.serialize()
    except DPKerasError as exc:
        raise DPKerasError(f"{path}: cannot be written as .dp: {exc}") from None
    if any(p != "float64" for p in _precisions(model_dict)):
        raise DPKerasError(f"{path}: writing a float32 model as .dp is not supported yet; save "
                           "it as .keras or a SavedModel directory")
    if model_def_script is None:
        model_def_script = model.get_config_deepmd()
    save_dict(path, {"software": "dpkeras", "version": __version__,
                     "time": str(datetime.datetime.now(datetime.timezone.utc)),
                     "backend": "dpkeras", "model": model_dict,
                     "model_def_script": model_def_script})
