"""Output statistics of a fresh model, set from the training data before training (DeePMD-kit's
``compute_output_stats`` / ``compute_input_stats`` of the fittings):

* ``ener``: the per-type energy bias (:func:`dpkeras.stat.compute_energy_bias`) and, with
  ``numb_fparam``/``numb_aparam``, the parameter normalization (:func:`param_stats`);
* ``polar`` with ``shift_diag``: the per-type mean diagonal (:func:`polar_constant_matrix`);
* ``dipole``: nothing.
"""

import logging

import numpy as np

from dpkeras.fitting.ener import param_stats
from dpkeras.fitting.tensor import polar_constant_matrix

log = logging.getLogger("dpkeras")


def set_output_stats(model, data, model_section):
    """Set the fitting's data statistics of ``model`` from ``data`` (a
    :class:`dpkeras.data.pipeline.DataSystems`); ``model_section``: the normalized section."""
    from dpkeras.stat import compute_energy_bias

    f = model.fitting
    fcfg = model_section["fitting_net"]
    nframes = model_section["data_stat_nbatch"] * max(data.batch_sizes)
    if f.fitting_type == "ener":
        bias = compute_energy_bias(data, model.get_ntypes(), fcfg["rcond"])
        f.bias_atom_e.assign(bias)
        log.info("energy bias per type %s: %s", model.get_type_map(),
                 np.array2string(bias, precision=6))
        for name in ("fparam", "aparam"):
            dim = getattr(f, f"numb_{name}")
            if dim:
                avg, inv_std = param_stats(data, name, dim, nframes,
                                           model_section["data_stat_protect"])
                getattr(f, f"{name}_avg").assign(avg)
                getattr(f, f"{name}_inv_std").assign(inv_std)
                log.info("%s mean %s, 1/std %s", name, avg, inv_std)
    elif f.fitting_type == "polar" and f.shift_diag:
        cm = polar_constant_matrix(data, f.get_sel_type(), model.get_ntypes(), nframes)
        f.constant_matrix.assign(cm)
        log.info("polar diagonal shift per type %s: %s", model.get_type_map(),
                 np.array2string(cm, precision=6))
