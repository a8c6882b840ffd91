"""The ``.dp`` model: descriptor, fitting and model-level variables; :func:`read_dp` and
:func:`write_dp`."""

import datetime

import numpy as np

from dpkeras import __version__

from dpkeras.errors import DPKerasError
from dpkeras.io.dp.dpa1 import dpa1_dict, read_dpa1
from dpkeras.io.dp.h5 import load_dict, save_dict
from dpkeras.io.dp.nets import fitting_net, read_net
from dpkeras.io.dp.se import SE_KINDS, SUPPORTED, read_se, se_dict


def read_dp(path):
    """Parse a ``.dp`` energy model (descriptor ``se_e2_a``/``se_e2_r``/``se_e3``, ``dpa1`` =
    ``se_atten``, or ``hybrid`` of the first three) into ``(model_config, weights)``."""
    data = load_dict(path)
    m = data.get("model")
    if not isinstance(m, dict):
        raise DPKerasError(f"{path}: no 'model' in the .dp file")
    if m.get("type", "standard") != "standard":
        raise DPKerasError(f"{path}: model type {m.get('type')!r} is not supported (only "
                           "'standard')")
    d, fit = m["descriptor"], m["fitting"]
    kind = d.get("type")
    if kind not in tuple(SE_KINDS) + ("dpa1", "se_atten", "hybrid"):
        raise DPKerasError(f"{path}: descriptor {kind!r} is not supported by dpkeras "
                           f"yet (supported: {SUPPORTED})")
    ftype = fit.get("type")
    if ftype not in ("ener", "dipole"):
        raise DPKerasError(f"{path}: fitting {ftype!r} is not supported yet (supported: ener, "
                           "dipole; DeePMD-kit cannot read its own polar .dp files back either)")
    if ftype == "dipole" and kind not in ("se_e2_a", "se_a"):
        raise DPKerasError(f"{path}: a dipole fitting on {kind!r} is not supported (only "
                           "se_e2_a)")
    bad = ["dim_case_embd"] + (["numb_fparam", "numb_aparam"] if ftype != "ener" else [])
    for key in bad:
        if fit.get(key, 0):
            raise DPKerasError(f"{path}: fitting.{key} = {fit[key]} is not supported yet")
    if m.get("pair_exclude_types") or m.get("atom_exclude_types"):
        raise DPKerasError(f"{path}: pair/atom_exclude_types are not supported yet")
    type_map = list(m["type_map"])
    ntypes = len(type_map)
    te_config = None
    tebd_dim = 0
    if kind in ("dpa1", "se_atten"):
        dconfig, te_config, weights = read_dpa1(d, path, ntypes)
        tebd_dim = te_config["neuron"][-1]
    elif kind == "hybrid":
        subs = d.get("list", [])
        bad = [s.get("type") for s in subs if s.get("type") not in SE_KINDS]
        if bad or not subs:
            raise DPKerasError(f"{path}: hybrid of {bad or 'nothing'} is not supported (only "
                               "se_e2_a, se_e2_r and se_e3 can be combined)")
        parsed = [read_se(s, path, ntypes) for s in subs]
        dconfig = {"type": "hybrid", "list": [c for c, _ in parsed]}
        weights = {"hybrid": [w for _, w in parsed]}
    else:
        dconfig, weights = read_se(d, path, ntypes)
    nets = fit["nets"]["networks"]
    if bool(fit.get("mixed_types", False)) != bool(tebd_dim):
        raise DPKerasError(f"{path}: fitting mixed_types = {fit.get('mixed_types')} with "
                           f"descriptor {kind!r} is not supported (dpkeras, like DeePMD-kit's TF "
                           "backend, uses one shared fitting net exactly for dpa1/se_atten)")
    if tebd_dim:
        if len(nets) != 1 or int(nets[0]["in_dim"]) != int(fit["dim_descrpt"]):
            raise DPKerasError(f"{path}: expected one shared fitting net of input width "
                               f"dim_descrpt = {fit['dim_descrpt']} (descriptor + type "
                               "embedding)")
        fitting = [read_net(nets[0], path, "fitting")]
    else:
        # dipole: nets only for the selected types (the others are excluded and null)
        excluded = set(fit.get("exclude_types", [])) if ftype == "dipole" else set()
        sel_type = [t for t in range(ntypes) if t not in excluded]
        if any(nets[t] is None for t in sel_type):
            raise DPKerasError(f"{path}: a fitting net of a selected type is missing")
        fitting = [read_net(nets[t], path, "fitting") for t in sel_type]
    fvars = fit["@variables"]
    mvars = m.get("@variables", {})
    out_bias = np.asarray(mvars.get("out_bias", np.zeros(1)), np.float64)
    out_std = np.asarray(mvars.get("out_std", np.ones(1)), np.float64)
    if not np.allclose(out_std, 1.0):
        raise DPKerasError(f"{path}: model out_std differs from 1, which dpkeras does not "
                           "support")
    trainable_fit = fit.get("trainable", True)
    fconfig = {
        "type": ftype, "neuron": list(fit["neuron"]), "resnet_dt": bool(fit["resnet_dt"]),
        "activation_function": fit.get("activation_function", "tanh"),
    }
    if ftype == "ener":   # the tensor fittings have no trainable key
        fconfig["trainable"] = list(trainable_fit) if isinstance(trainable_fit, list) \
            else bool(trainable_fit)
    if ftype == "dipole":
        if np.any(out_bias) or np.any(np.asarray(fvars.get("bias_atom_e", 0.0))):
            raise DPKerasError(f"{path}: a dipole model with a non-zero output bias is not "
                               "supported (DeePMD-kit's TF backend has none)")
        fconfig["sel_type"] = sel_type
    else:
        bias = np.asarray(fvars["bias_atom_e"], np.float64).reshape(ntypes)
        if out_bias.size > 1:
            bias = bias + out_bias.reshape(-1, ntypes)[0]
        weights["bias_atom_e"] = bias
        for key in ("numb_fparam", "numb_aparam"):
            if fit.get(key, 0):
                fconfig[key] = int(fit[key])
                name = key[5:]                               # fparam / aparam
                for stat in ("avg", "inv_std"):
                    weights[f"{name}_{stat}"] = np.asarray(fvars[f"{name}_{stat}"],
                                                           np.float64).reshape(-1)
    config = {"type_map": type_map, "descriptor": dconfig, "fitting_net": fconfig}
    if te_config is not None:
        config["type_embedding"] = te_config
    # float32 sections stay float32 (their weights are cast on assignment)
    for section, src in ((fconfig, fit), (dconfig, d), (te_config, d.get("type_embedding"))):
        if section is not None and isinstance(src, dict) and src.get("precision") == "float32":
            section["precision"] = "float32"
    for section, src in zip(dconfig.get("list", []), d.get("list", [])):
        if src.get("precision") == "float32":
            section["precision"] = "float32"
    weights["fitting"] = fitting
    return config, weights


def write_dp(model, weights, path, model_def_script=None):
    """Write an ``EnergyModel`` (or a dipole ``TensorModel``) as a DeePMD-kit ``.dp`` file;
    ``weights``: its weights dict (:func:`dpkeras.model.weights.get_weights`)."""
    d, f = model.descriptor, model.fitting
    kind = d.descriptor_type
    if kind not in ("se_e2_a", "se_e2_r", "se_e3", "se_atten", "se_atten_v2", "hybrid"):
        raise DPKerasError(f"{path}: writing a {kind} model as .dp is not supported yet; save "
                           "it as .keras or a SavedModel directory")
    ftype = getattr(f, "fitting_type", "ener")
    if ftype not in ("ener", "dipole"):
        raise DPKerasError(f"{path}: writing a {ftype} model as .dp is not supported (DeePMD-kit "
                           "cannot read its own polar .dp files back); save it as .keras or a "
                           "SavedModel directory")
    if kind in ("se_e2_a", "hybrid") and getattr(d, "type_embed", None) is not None:
        raise DPKerasError(f"{path}: writing a type-embedded {kind} model (model.type_embedding "
                           "with se_e2_a, or a hybrid with an attention member) as .dp is not "
                           "supported: DeePMD-kit's TF backend cannot serialize it either; save "
                           "it as .keras or a SavedModel directory")
    leaves = d.leaves() if hasattr(d, "leaves") else [d]
    if any(getattr(x, "tabulated", None) for x in leaves):
        raise DPKerasError(f"{path}: a compressed model (tabulated embedding nets, `dp "
                           "compress`) cannot be written as .dp: DeePMD-kit's .dp holds the "
                           "networks, not tables; save it as .keras or a SavedModel directory, "
                           "or convert the graph from before compression")
    if any(getattr(x, "net_dtype", "float64") != "float64" for x in leaves + [f]) or (
            getattr(d, "type_embed", None) is not None and d.type_embed.variable_dtype != "float64"):
        raise DPKerasError(f"{path}: writing a float32 model as .dp is not supported yet; save "
                           "it as .keras or a SavedModel directory")
    w = weights
    ntypes = model.get_ntypes()
    tmap = model.get_type_map()
    if kind in ("se_atten", "se_atten_v2"):
        descriptor = dpa1_dict(d, w, ntypes, tmap, path)
    elif kind == "hybrid":
        descriptor = {"@class": "Descriptor", "type": "hybrid", "@version": 1,
                      # as DeePMD-kit's TF backend: the members carry no type_map
                      "list": [se_dict(sub, ws, ntypes, None)
                               for sub, ws in zip(d.descriptors, w["hybrid"])]}
    else:
        descriptor = se_dict(d, w, ntypes, tmap)
    fitting = _dipole_dict(f, w, ntypes, tmap) if ftype == "dipole" else \
        _ener_dict(f, w, ntypes, tmap)
    nout = 3 if ftype == "dipole" else 1
    model_dict = {
        "@class": "Model", "type": "standard", "@version": 2, "type_map": tmap,
        "descriptor": descriptor, "fitting": fitting, "atom_exclude_types": [],
        "pair_exclude_types": [], "rcond": None, "preset_out_bias": None,
        "@variables": {"out_bias": np.zeros((1, ntypes, nout)),
                       "out_std": np.ones((1, ntypes, nout))},
    }
    if model_def_script is None:
        model_def_script = model.get_config_deepmd()
    save_dict(path, {"software": "dpkeras", "version": __version__,
                     "time": str(datetime.datetime.now(datetime.timezone.utc)),
                     "backend": "dpkeras", "model": model_dict,
                     "model_def_script": model_def_script})


def _fit_trainable(f):
    return [bool(f.trainable)] * (len(f.neuron) + 1)


def _ener_dict(f, w, ntypes, tmap):
    mixed = bool(f.tebd_dim)
    nfp, nap = int(getattr(f, "numb_fparam", 0)), int(getattr(f, "numb_aparam", 0))
    # DeePMD-kit's TF convention: dim_descrpt includes the type embedding, not fparam/aparam
    dim = f.dim_descrpt + f.tebd_dim
    nets = [fitting_net(net, dim + nfp + nap, f.neuron, f.activation_function, f.resnet_dt)
            for net in w["fitting"]]
    stats = {f"{n}_{s}": (w[f"{n}_{s}"] if k else None)
             for n, k in (("fparam", nfp), ("aparam", nap)) for s in ("avg", "inv_std")}
    return {
        "@class": "Fitting", "type": "ener", "@version": 4, "var_name": "energy",
        "ntypes": ntypes, "dim_descrpt": dim, "mixed_types": mixed, "dim_out": 1,
        "neuron": f.neuron, "resnet_dt": f.resnet_dt, "numb_fparam": nfp, "numb_aparam": nap,
        "dim_case_embd": 0, "default_fparam": None, "rcond": None, "tot_ener_zero": False,
        "trainable": _fit_trainable(f), "atom_ener": [],
        "activation_function": f.activation_function, "precision": "float64",
        "layer_name": None, "use_aparam_as_mask": False, "spin": None, "exclude_types": [],
        "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 0 if mixed else 1,
                 "ntypes": ntypes, "network_type": "fitting_network", "networks": nets},
        "@variables": dict({"bias_atom_e": w["bias_atom_e"].reshape(ntypes, 1)}, **stats,
                           case_embd=None),
        "type_map": tmap,
    }


def _dipole_dict(f, w, ntypes, tmap):
    """DeePMD-kit's TF ``dipole`` fitting: nets of the selected types, ``null`` elsewhere."""
    m1 = f.embedding_width
    nets = [None] * ntypes
    for t, net in zip(f.sel_type, w["fitting"]):
        nets[t] = fitting_net(net, f.dim_descrpt, f.neuron, f.activation_function,
                               f.resnet_dt, out_dim=m1)
    return {
        "@class": "Fitting", "type": "dipole", "@version": 4, "ntypes": ntypes,
        "dim_descrpt": f.dim_descrpt, "embedding_width": m1, "mixed_types": False,
        "neuron": f.neuron, "resnet_dt": f.resnet_dt, "numb_fparam": 0, "numb_aparam": 0,
        "dim_case_embd": 0, "default_fparam": None,
        "activation_function": f.activation_function, "precision": "float64",
        "exclude_types": [t for t in range(ntypes) if t not in f.sel_type],
        "@variables": {"fparam_avg": None, "fparam_inv_std": None, "aparam_avg": None,
                       "aparam_inv_std": None, "case_embd": None,
                       "bias_atom_e": np.zeros((ntypes, m1))},
        "type_map": tmap, "var_name": "dipole", "rcond": None, "tot_ener_zero": False,
        "trainable": _fit_trainable(f), "layer_name": None, "use_aparam_as_mask": False,
        "spin": None, "r_differentiable": True, "c_differentiable": True,
        "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 1, "ntypes": ntypes,
                 "network_type": "fitting_network", "networks": nets},
    }
