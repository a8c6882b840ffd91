"""The one builder: a Keras model from a model section, or from DeePMD-kit's versioned dict.

:func:`build_model` makes a fresh model (``EnergyModel``, or ``TensorModel`` for a ``dipole`` /
``polar`` fitting) from an ``input.json`` model section. :func:`deserialize` makes the model of
DeePMD-kit's serialized model dict (what ``.dp`` files hold and what
:meth:`~dpkeras.model.ener.DeepmdModel.serialize` writes): each kind reads its part
(``from_serialized`` of the descriptor and fitting classes) into a section and variables, the
section is built and the variables assigned. Frozen graphs are read into the same section and
variables (:mod:`dpkeras.io.deepmd_pb`) and built by :func:`build`.
"""

import numpy as np

from dpkeras.config import model_kwargs, normalize_model
from dpkeras.descriptor.registry import from_serialized as descriptor_from_serialized
from dpkeras.errors import DPKerasError
from dpkeras.fitting import FITTINGS, TENSOR_FITTINGS
from dpkeras.model.ener import EnergyModel
from dpkeras.model.tensor import TensorModel


def build_model(model_section):
    """An ``EnergyModel`` or (``dipole``/``polar`` fitting) a ``TensorModel`` from a (not
    necessarily normalized) ``model`` section, freshly initialized."""
    kwargs = model_kwargs(normalize_model(model_section))
    if kwargs["fitting_net"]["type"] in TENSOR_FITTINGS:
        return TensorModel(**kwargs)
    return EnergyModel(**kwargs)


def build(model_section, variables, source):
    """The model of ``model_section`` with ``variables`` (``get_variables``'s dict) assigned."""
    model = build_model(model_section)
    model.set_variables(variables, source)
    return model


def deserialize(data, source="the model dict"):
    """The Keras model of DeePMD-kit's serialized model dict ``data``."""
    return build(*section_from_serialized(data, source), source)


def section_from_serialized(m, source):
    """``(model section, variables)`` of DeePMD-kit's serialized model dict ``m``."""
    if not isinstance(m, dict) or "descriptor" not in m or "fitting" not in m:
        raise DPKerasError(f"{source}: not a DeePMD-kit model dict (no descriptor/fitting)")
    if m.get("type", "standard") != "standard":
        raise DPKerasError(f"{source}: model type {m.get('type')!r} is not supported (only "
                           "'standard')")
    d, fit = m["descriptor"], m["fitting"]
    ftype = fit.get("type")
    if ftype not in ("ener", "dipole"):
        raise DPKerasError(f"{source}: fitting {ftype!r} is not supported yet (supported: ener, "
                           "dipole; DeePMD-kit cannot read its own polar .dp files back either)")
    if ftype == "dipole" and d.get("type") not in ("se_e2_a", "se_a"):
        raise DPKerasError(f"{source}: a dipole fitting on {d.get('type')!r} is not supported "
                           "(only se_e2_a)")
    if m.get("pair_exclude_types") or m.get("atom_exclude_types"):
        raise DPKerasError(f"{source}: pair/atom_exclude_types are not supported yet")
    type_map = list(m["type_map"])
    ntypes = len(type_map)
    dsec, variables, te_sec = descriptor_from_serialized(d, ntypes, source)
    tebd_dim = int(te_sec["neuron"][-1]) if te_sec is not None else 0
    if bool(fit.get("mixed_types", False)) != bool(tebd_dim):
        raise DPKerasError(f"{source}: fitting mixed_types = {fit.get('mixed_types')} with "
                           f"descriptor {d.get('type')!r} is not supported (dpkeras, like "
                           "DeePMD-kit's TF backend, uses one shared fitting net exactly for "
                           "dpa1/se_atten)")
    fsec, fvars = FITTINGS[ftype].from_serialized(fit, ntypes, source, tebd_dim)
    mvars = m.get("@variables", {})
    out_bias = np.asarray(mvars.get("out_bias", np.zeros(1)), np.float64)
    out_std = np.asarray(mvars.get("out_std", np.ones(1)), np.float64)
    if not np.allclose(out_std, 1.0):
        raise DPKerasError(f"{source}: model out_std differs from 1, which dpkeras does not "
                           "support")
    if ftype == "dipole":
        if np.any(out_bias):
            raise DPKerasError(f"{source}: a dipole model with a non-zero output bias is not "
                               "supported (DeePMD-kit's TF backend has none)")
    elif out_bias.size > 1:
        fvars["bias_atom_e"] = fvars["bias_atom_e"] + out_bias.reshape(-1, ntypes)[0]
    section = {"type_map": type_map, "descriptor": dsec, "fitting_net": fsec}
    if te_sec is not None:
        section["type_embedding"] = te_sec
    variables.update(fvars)
    return section, variables


def check_finite(model, source):
    """Refuse a model whose weights hold NaN or inf (a diverged training): naming the first
    such weight. ``model``: any model with ``weights`` (multi-task too)."""
    for v in model.weights:
        x = v.numpy()
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            raise DPKerasError(f"{source}: weight {v.path} holds NaN or inf values (the training "
                               "diverged); use an earlier checkpoint or retrain with a smaller "
                               "learning_rate.start_lr")
