"""Statistics from data: descriptor normalization, per-type energy bias, neighbor counts.

All three follow DeePMD-kit's TF backend:

* ``davg``/``dstd`` per center type from the raw environment matrices of the first
  ``data_stat_nbatch`` batches of every system (padded slots included): radial column mean and
  std; angular columns mean 0 and the std of their three components pooled; any std below
  ``data_stat_protect`` is set to it.
* ``bias_atom_e``: least-squares solution (minimum norm) of ``counts @ bias = mean energy``, one
  row per system.
* neighbor statistics: the largest number of neighbors of each type within ``rcut`` and the
  smallest pair distance, used to check ``sel``.
"""

import os

import numpy as np
import tensorflow as tf

from dpkeras.env_mat import env_matrix, pair_vectors
from dpkeras.errors import DPKerasError


def compute_env_stats(data, descriptor, nbatch, protect=1e-2):
    """``(davg, dstd)`` of shape ``[ntypes, nnei, ncol]`` (``ncol`` 4, or 1 for radial-only
    descriptors)."""
    ntypes, nnei = descriptor.ntypes, descriptor.nnei
    radial = descriptor.radial_only
    sums = np.zeros((ntypes, 5))  # sumr, suma, sumn, sumr2, suma2
    nframes = None if nbatch is None else nbatch * max(data.batch_sizes)
    for _, _, b in data.frames(descriptor.rcut, descriptor.sel, descriptor.mixed_types(),
                            max_frames=nframes):
        rij, mask = pair_vectors(b["coord"], b["box"], b["nlist"], b["shift"])
        env = env_matrix(rij, mask, descriptor.rcut_smth, descriptor.rcut, radial).numpy()
        atype = b["atype"].numpy()
        for t in range(ntypes):
            dd = env[atype == t].reshape(-1, env.shape[-1])
            if not len(dd):
                continue
            r, a = dd[:, 0], dd[:, 1:]
            sums[t] += [r.sum(), a.sum() / 3.0, len(dd), (r * r).sum(), (a * a).sum() / 3.0]
    ncol = 1 if radial else 4
    davg = np.zeros((ntypes, nnei, ncol))
    dstd = np.ones((ntypes, nnei, ncol))
    for t in range(ntypes):
        sumr, suma, n, sumr2, suma2 = sums[t]
        if n == 0:
            continue  # type absent from the data: keep avg 0 / std 1
        davg[t, :, 0] = sumr / n
        std_r = np.sqrt(max(sumr2 / n - (sumr / n) ** 2, 0.0))
        std_a = np.sqrt(max(suma2 / n - (suma / n) ** 2, 0.0))
        dstd[t, :, 0] = max(std_r, protect)
        if not radial:
            dstd[t, :, 1:] = max(std_a, protect)
    if descriptor.set_davg_zero:
        davg[:] = 0.0
    return davg, dstd


def compute_energy_bias(data, ntypes, rcond=None):
    """Per-type energy bias ``[ntypes]`` from the mean energy of each system."""
    rows, energies = [], []
    for s in data.systems:
        if "energy" not in s.labels:
            continue
        rows.append(s.type_counts(ntypes))
        energies.append(s.labels["energy"].mean())
    if not rows:
        return np.zeros(ntypes)
    bias, *_ = np.linalg.lstsq(np.asarray(rows, float), np.asarray(energies), rcond=rcond)
    return bias


def neighbor_stat(data, rcut, sel, mixed_types=False):
    """``(max_count [len(sel)], min_dist)`` over every frame; raises on a ``sel`` overflow,
    naming the system, frame and counts."""
    max_count = np.zeros(len(sel), dtype=int)
    min_dist = np.inf
    # one slot per group is enough: counts are taken before truncation, and the nearest
    # neighbor gives the smallest distance
    for k, lo, b in data.frames(rcut, [1] * len(sel), mixed_types, batch=16):
        count = b["nbor_count"].numpy()
        per_frame = count.max(axis=1)                                   # [nf, ngroups]
        max_count = np.maximum(max_count, per_frame.max(axis=0))
        rij, mask = pair_vectors(b["coord"], b["box"], b["nlist"], b["shift"])
        d = tf.where(mask, tf.norm(rij, axis=-1), np.inf).numpy()
        min_dist = min(min_dist, float(d.min()))
        over = np.argwhere(per_frame > np.asarray(sel)[None, :])
        if len(over):
            f, g = over[0]
            raise DPKerasError(
                f"{data.systems[int(k)].path}: frame {int(lo) + f} has {per_frame[f, g]} "
                f"neighbors of "
                f"{_group_name(data, g, mixed_types)} within rcut={rcut}, more than "
                f"sel[{g}]={sel[g]}; raise sel[{g}] to at least {per_frame[f, g]}")
    return max_count, min_dist


def report_neighbor_stat(data, descriptor, log):
    """:func:`neighbor_stat` at the descriptor's cut-off and ``sel`` (raises on an overflow),
    logged on ``log``."""
    d = descriptor
    max_count, min_dist = neighbor_stat(data, d.rcut, d.sel, d.mixed_types())
    log.info("neighbor statistics: max neighbors per type %s (sel %s), min pair distance "
             "%.4f A", max_count.tolist(), d.sel, min_dist)
    check_sel_size(data, d, max_count, log)


def machine_memory():
    """Physical memory of this machine in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_sel_size(data, descriptor, max_count, log):
    """``sel`` far above the neighbors the data has (more than twice, plus 8) costs memory and
    time for nothing: a warning with the measured maximum and about the memory a training step
    will take (float64 activations of the embedding nets, forward and backward), and an error
    when that exceeds the machine's memory."""
    sel = np.asarray(descriptor.sel)
    if np.all(sel <= 2 * max_count + 8):
        return
    atoms = max(s.natoms * b for s, b in zip(data.systems, data.batch_sizes))
    per_atom = sum(sum(leaf.sel) * (4 + sum(leaf.neuron)) for leaf in descriptor.leaves())
    need = atoms * per_atom * 8 * 6
    msg = (f"sel {sel.tolist()} is far above the largest neighbor counts in the data, "
           f"{max_count.tolist()} (sel: \"auto\" picks 1.1 x those); a training step will take "
           f"about {need / 2 ** 30:.1f} GiB")
    if need > machine_memory():
        raise DPKerasError(f"input.json: model.descriptor.sel: {msg}, more than this machine's "
                           f"{machine_memory() / 2 ** 30:.1f} GiB; lower sel")
    log.warning("%s; lower sel to save memory and time", msg)


def resolve_auto_sel(model_section, data):
    """Replace ``sel: "auto"`` / ``"auto:F"`` in a normalized model section by DeePMD-kit's
    choice: the largest neighbor count in ``data`` within ``rcut`` (per type, or of all types
    for attention descriptors) times ``F`` (default 1.1), rounded down, then up to a multiple
    of 4. Members of a ``hybrid`` are resolved one by one. Returns a new section."""
    from dpkeras.config import ATTENTION_DESCRIPTORS, auto_sel_factor

    def one(d):
        factor = auto_sel_factor(d.get("sel"))
        if factor is None:
            return d
        mixed = d["type"] in ATTENTION_DESCRIPTORS
        ngroups = 1 if mixed else len(data.type_map)
        count, _ = neighbor_stat(data, d["rcut"], [np.iinfo(np.int32).max] * ngroups, mixed)
        sel = [4 * ((int(c * factor) + 3) // 4) for c in count.tolist()]
        return dict(d, sel=sel[0] if mixed else sel)

    m = dict(model_section)
    d = m["descriptor"]
    m["descriptor"] = dict(d, list=[one(x) for x in d["list"]]) if d["type"] == "hybrid" \
        else one(d)
    return m


def _group_name(data, g, mixed_types):
    return "any type" if mixed_types else f"type {g} ({data.type_map[g]})"


# --- energy-bias recalibration (fine-tuning, change_bias) ------------------------------------
BIAS_MODES = ("change-by-statistic", "set-by-statistic")


def bias_frames(data, ntest, seed):
    """Frames used to recalibrate the energy bias: ``[(system index, frame indices)]``.

    Per system with energy labels, ``min(ntest, nframes)`` distinct frames drawn by a generator
    seeded with ``(seed, system index)``; ``ntest <= 0`` takes every frame. DeePMD-kit draws
    the same number of frames (the first ``ntest`` of its shuffled test set) with its own
    generator, so the frames coincide exactly only when ``ntest >= nframes``.
    """
    out = []
    for k, s in enumerate(data.systems):
        if "energy" not in s.labels:
            continue
        if ntest <= 0 or ntest >= s.nframes:
            out.append((k, np.arange(s.nframes)))
            continue
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, k])
        out.append((k, np.sort(rng.choice(s.nframes, size=int(ntest), replace=False))))
    if not out:
        raise DPKerasError("no system has energy labels (energy.npy); the energy bias cannot "
                           "be recalibrated")
    return out


def fit_bias(counts, energy, old_bias, predicted=None, mode="change-by-statistic"):
    """New per-type energy bias, as DeePMD-kit's ``change_energy_bias_lower``.

    Args:
      counts: ``[nframes, ntypes]`` atoms of each type per frame.
      energy: ``[nframes]`` labelled (DFT) energies, eV.
      old_bias: ``[ntypes]`` current ``bias_atom_e``, eV.
      predicted: ``[nframes]`` energies predicted by the current model (``change`` mode).
      mode: ``change-by-statistic``: ``bias = old + lstsq(counts, energy - predicted)``;
        ``set-by-statistic``: ``bias = lstsq(counts, energy)`` (minimum-norm solutions, so a
        type absent from every frame gets a change of 0, resp. a bias of 0).

    Returns ``(new_bias [ntypes], rmse_ae)`` where ``rmse_ae`` (eV/atom) is the RMS of the
    remaining per-atom energy error after the fit (``nan`` in ``set`` mode).
    """
    counts = np.asarray(counts, np.float64)
    energy = np.asarray(energy, np.float64).reshape(-1)
    old_bias = np.asarray(old_bias, np.float64).reshape(-1)
    if mode == "change-by-statistic":
        if predicted is None:
            raise ValueError("change-by-statistic needs the predicted energies")
        predicted = np.asarray(predicted, np.float64).reshape(-1)
        delta = np.linalg.lstsq(counts, energy - predicted, rcond=None)[0]
        rmse_ae = float(np.sqrt(np.mean(((predicted + counts @ delta - energy)
                                         / counts.sum(-1)) ** 2)))
        return old_bias + delta, rmse_ae
    if mode == "set-by-statistic":
        return np.linalg.lstsq(counts, energy, rcond=None)[0], float("nan")
    raise DPKerasError(f"unknown bias mode {mode!r}; use one of {', '.join(BIAS_MODES)}")
