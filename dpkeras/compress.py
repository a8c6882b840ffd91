"""``python -m dpkeras.compress --model=IN --output=OUT --system=S [--stride=0.01]
[--extrapolate=5] [--check_frequency=-1] [--force]``: model compression as ``dp compress``
(``-s``, ``-e``, ``-f``).

Every embedding net of an ``se_e2_a`` / ``se_e2_r`` / ``se_e3`` descriptor, and the net of the
radial entry of a strip-mode ``se_atten`` / ``se_atten_v2`` (its type-pair net becomes a
:class:`dpkeras.tabulate.PairTable` of its value at every type pair; its attention layers act on
the nets' output unchanged), also as members of a hybrid, is replaced by a
:class:`dpkeras.tabulate.TabulatedEmbedding`: on each interval a
quintic that matches the net's value, first and second derivative at both ends (DeePMD-kit's
construction). The range is DeePMD-kit's: from ``floor(-davg/dstd)`` (a neighbor at the cut-off,
or a padded slot) to ``ceil((1/min_nbor_dist - davg)/dstd)``, at ``stride``, then up to
``extrapolate`` times the upper bound at ``10 * stride`` (``se_e3``: the bound of
:func:`theta_range`). ``min_nbor_dist`` comes from the frames of ``--system``.

After tabulating, the compressed model is checked against the original on the frames of
``--system``; the largest relative energy / force / virial differences are printed and a model
worse than ``1e-7`` is not written unless ``--force``. ``IN``: any model dpkeras reads; ``OUT``:
a SavedModel directory, or a ``.keras`` file.
"""

import logging
import math

import numpy as np
import tensorflow as tf

from dpkeras.errors import DPKerasError

log = logging.getLogger("dpkeras")
TOLERANCE = 1e-7


def _leaves(descriptor):
    return descriptor.leaves() if hasattr(descriptor, "leaves") else [descriptor]


def _check_compressible(model):
    for d in _leaves(model.descriptor):
        kind = d.descriptor_type
        if kind in ("se_atten", "se_atten_v2"):
            if d.tebd_input_mode != "strip":
                raise DPKerasError(
                    f"compressing a {kind} descriptor with tebd_input_mode 'concat' is not "
                    "possible: its embedding net takes the type embeddings with the radial "
                    "entry, so no table of one variable replaces it (DeePMD-kit compresses "
                    "only strip mode too); train with tebd_input_mode 'strip' or se_atten_v2")
        elif kind not in ("se_e2_a", "se_e2_r", "se_e3"):
            raise DPKerasError(f"compressing a {kind} descriptor is not implemented (dpkeras "
                               "compresses se_e2_a, se_e2_r, se_e3 and strip-mode se_atten / "
                               "se_atten_v2, and hybrids of them)")
        elif getattr(d, "type_embed", None) is not None:
            raise DPKerasError(
                f"compressing a {kind} descriptor with a type embedding (model.type_embedding) "
                "is not possible: its embedding net takes the type embeddings with the radial "
                "entry, so no table of one variable replaces it (DeePMD-kit refuses it too: "
                "'compression of type embedded descriptor is not supported')")
        if getattr(d, "tabulated", None):
            raise DPKerasError("the model is compressed already")


def table_range(davg, dstd, min_nbor_dist, rcut_smth, rcut):
    """``(lower, upper)`` of the normalized ``s`` a net sees: DeePMD-kit's floor/ceil of
    ``-davg/dstd`` and ``(sw(r_min)/r_min - davg)/dstd`` (``r_min = min_nbor_dist``)."""
    from dpkeras.env_mat import smooth_switch

    sw = float(smooth_switch(tf.constant(min_nbor_dist, tf.float64), rcut_smth, rcut))
    lower = math.floor(float(np.min(-davg / dstd)))
    upper = math.ceil(float(np.max((sw / min_nbor_dist - davg) / dstd)))
    return lower, upper


def theta_range(davg, dstd, block_a, block_b, min_nbor_dist, rcut_smth, rcut):
    """``(lower, upper)`` of the angle ``theta = v_ij . v_ik`` an ``se_e3`` net of the
    neighbor-type blocks ``a``, ``b`` (slot ranges ``(lo, hi)``) sees, over every center type:
    ``|theta| <= |v_ij| |v_ik|`` and, as ``v_d = (s x_d / r - davg_d) / dstd_d`` with
    ``s <= sw(r_min)/r_min`` and ``sum_d (x_d/r)^2 = 1``,
    ``|v| <= (s + max_d |davg_d|) / min_d dstd_d`` per slot."""
    from dpkeras.env_mat import smooth_switch

    s = float(smooth_switch(tf.constant(min_nbor_dist, tf.float64), rcut_smth, rcut)) \
        / min_nbor_dist
    norm = (s + np.max(np.abs(davg[..., 1:]), axis=-1)) / np.min(dstd[..., 1:], axis=-1)
    (la, ha), (lb, hb) = block_a, block_b
    bound = float(np.max(np.max(norm[:, la:ha], axis=1) * np.max(norm[:, lb:hb], axis=1)))
    return math.floor(-bound), math.ceil(bound)


def _derivatives(net, x):
    """``G(x), G'(x), G''(x)``, each ``[n, M]``, at the points ``x [n]`` (forward mode: the
    input is one number per row, so one tangent gives every output's derivative)."""
    x = tf.constant(x.reshape(-1, 1), net.dtype)
    ones = tf.ones_like(x)
    with tf.autodiff.ForwardAccumulator(x, ones) as outer:
        with tf.autodiff.ForwardAccumulator(x, ones) as inner:
            y = net(x)
        d1 = inner.jvp(y)
    d2 = outer.jvp(d1)
    return y.numpy(), d1.numpy(), d2.numpy()


def tabulate_net(net, lower, upper, stride, extrapolate):
    """``(table [nspline, 6 M], table_info [6])`` of one embedding net, laid out as
    :class:`dpkeras.tabulate.TabulatedEmbedding` (and DeePMD-kit) read it."""
    s0, s1 = float(stride), 10.0 * float(stride)
    xmax = float(extrapolate) * upper
    if xmax <= upper:
        raise DPKerasError(f"extrapolate={extrapolate} must be > 1 (the table's end "
                           f"{xmax} would not exceed its fine range's end {upper})")
    first = int((upper - lower) / s0)
    n1 = int((xmax - upper) / s1)
    starts = np.concatenate([lower + s0 * np.arange(first), upper + s1 * np.arange(n1)])
    ends = np.concatenate([lower + s0 * np.arange(1, first + 1),
                           upper + s1 * np.arange(1, n1 + 1)])
    y0, d0, c0 = _derivatives(net, starts)
    y1, d1, c1 = _derivatives(net, ends)
    h = (ends - starts)[:, None]
    dy = y1 - y0
    a = np.stack([
        y0, d0, c0 / 2,
        (20 * dy - (8 * d1 + 12 * d0) * h - (3 * c0 - c1) * h ** 2) / (2 * h ** 3),
        (-30 * dy + (14 * d1 + 16 * d0) * h + (3 * c0 - 2 * c1) * h ** 2) / (2 * h ** 4),
        (12 * dy - 6 * (d1 + d0) * h - (c0 - c1) * h ** 2) / (2 * h ** 5)], axis=-1)
    return a.reshape(len(starts), -1), [float(lower), float(upper), xmax, s0, s1, -1.0]


def compress_model(model, min_nbor_dist, stride=0.01, extrapolate=5, check_frequency=-1):
    """A copy of ``model`` (an energy or tensor model) with tabulated embedding nets;
    ``check_frequency > 0``: evaluators warn every that many evaluations when inputs fell
    outside the tables (:func:`dpkeras.tabulate.beyond_table`)."""
    from dpkeras.config import normalize_model
    from dpkeras.descriptor.se_base import net_key
    from dpkeras.model.build import build

    _check_compressible(model)
    weights = model.get_variables()
    section = normalize_model(model.get_config_deepmd())
    leaves = _leaves(model.descriptor)
    members = section["descriptor"]["list"] if section["descriptor"]["type"] == "hybrid" \
        else [section["descriptor"]]
    wleaves = weights["hybrid"] if "hybrid" in weights else [weights]
    for d, cfg, w in zip(leaves, members, wleaves):
        davg, dstd = d.env_mat.davg.numpy(), d.env_mat.dstd.numpy()
        spec = {}
        # per-type nets, or (strip-mode se_atten) the one net of the radial entry, key ()
        for key, net in d.nets_by_key().items():
            if d.descriptor_type == "se_e3":   # the nets take the angle of two neighbors
                lower, upper = theta_range(davg, dstd, d.offsets[key[0]], d.offsets[key[1]],
                                           min_nbor_dist, d.rcut_smth, d.rcut)
            else:
                rows = [key[0]] if len(key) == 2 else range(d.ntypes)   # its center types
                lower, upper = table_range(davg[list(rows), :, 0], dstd[list(rows), :, 0],
                                           min_nbor_dist, d.rcut_smth, d.rcut)
            table, info = tabulate_net(net, lower, upper, stride, extrapolate)
            info[5] = float(check_frequency)
            spec[net_key(key)] = {"nspline": int(table.shape[0]), "table_info": info}
            w["embeddings"][key] = {"table": table}
        if getattr(d, "embedding_strip", None) is not None:   # strip mode: E of every type pair
            w["embedding_strip"] = {"table": d.pair_table().numpy()}
        cfg["tabulated"] = spec
    return build(section, weights, "the compressed model")


def max_differences(a, b, frames):
    """Largest relative energy / force / virial difference of models ``a`` and ``b`` on
    ``frames`` (a list of ``(coord, box or None, atype)``)."""
    from dpkeras.infer import DeepPot

    pa, pb = DeepPot.from_model(a), DeepPot.from_model(b)
    worst = {"energy": 0.0, "force": 0.0, "virial": 0.0}
    for coord, box, atype in frames:
        for key, x, y in zip(worst, pa.eval(coord, box, atype), pb.eval(coord, box, atype)):
            if box is None and key == "virial":
                continue
            worst[key] = max(worst[key], float(np.max(np.abs(x - y)) /
                                               max(np.max(np.abs(y)), 1e-300)))
    return worst


def compress(source, output, systems, stride=0.01, extrapolate=5, force=False, nframes=4,
             check_frequency=-1):
    """Compress the model at ``source``, check it on ``systems`` and save it to ``output``.
    Returns the largest relative differences."""
    from dpkeras.data.pipeline import DataSystems
    from dpkeras.export import save_model
    from dpkeras.load import load_model
    from dpkeras.stat import neighbor_stat

    model, _ = load_model(source)
    if not systems:
        raise DPKerasError("give --system (frames to measure min_nbor_dist on and to check "
                           "the compressed model against the original)")
    data = DataSystems({"systems": list(systems), "batch_size": 1}, model.get_type_map(),
                       path="--system")
    d = model.descriptor
    _, min_dist = neighbor_stat(data, d.get_rcut(), d.get_sel())
    if not np.isfinite(min_dist) or min_dist <= 0:
        raise DPKerasError(f"--system {systems}: no neighbor pair within the cut-off, or "
                           f"atoms on top of each other (min distance {min_dist})")
    log.info("min_nbor_dist %.4f A; tabulating at stride %g up to %g x the range", min_dist,
             stride, extrapolate)
    small = compress_model(model, min_dist, stride, extrapolate, check_frequency)
    frames = []
    for s in data.systems:
        n = min(nframes, s.nframes)
        for i in range(n):
            frames.append((s.coord[i:i + 1], s.box[i:i + 1] if s.pbc else None, s.atype))
    worst = max_differences(small, model, frames)
    log.info("compressed vs original on %d frames: max relative energy %.2e, force %.2e, "
             "virial %.2e", len(frames), worst["energy"], worst["force"], worst["virial"])
    bad = {k: v for k, v in worst.items() if v > TOLERANCE}
    if bad and not force:
        raise DPKerasError(f"the compressed model differs from the original by {bad} "
                           f"(relative, more than {TOLERANCE}); use a smaller --stride, or "
                           "--force to write it anyway")
    save_model(small, output)
    return worst


def main(argv):
    del argv
    from absl import flags

    from dpkeras import cli

    FLAGS = flags.FLAGS
    cli.setup_logging(FLAGS.log_level)
    worst = compress(FLAGS.model, FLAGS.output, FLAGS.system, FLAGS.stride, FLAGS.extrapolate,
                     FLAGS.force, check_frequency=FLAGS.check_frequency)
    print(f"compressed {FLAGS.model} -> {FLAGS.output}: max relative difference energy "
          f"{worst['energy']:.2e}, force {worst['force']:.2e}, virial {worst['virial']:.2e}")


def _define_flags():
    from absl import flags

    from dpkeras import cli

    flags.DEFINE_string("model", None, "model to compress (any format dpkeras reads)")
    flags.DEFINE_string("output", None, "compressed model: a SavedModel directory or .keras")
    flags.DEFINE_multi_string("system", None, "DeePMD-kit system(s): min_nbor_dist and check")
    flags.DEFINE_float("stride", 0.01, "table interval (dp compress -s)")
    flags.DEFINE_float("extrapolate", 5, "the table extends to this times its range (-e)")
    flags.DEFINE_integer("check_frequency", -1, "warn every N evaluations when inputs fell "
                         "outside the tables (-f; -1: no check)")
    flags.DEFINE_bool("force", False, f"write the model even if worse than {TOLERANCE}")
    flags.mark_flags_as_required(["model", "output"])
    cli.define_log_level()


if __name__ == "__main__":
    from dpkeras import cli

    _define_flags()
    cli.run_main(main)
