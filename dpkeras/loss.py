"""DeePMD-kit's ``ener`` loss with learning-rate-dependent prefactors, and its ``tensor`` loss
(:class:`TensorLoss`).

``pref(lr) = limit + (start - limit) * lr / start_lr``;

``L = pref_e / N * <(E - E*)^2> + pref_f * <|F - F*|^2> + pref_v / N * <(W - W*)^2>
+ pref_ae * <(e - e*)^2>``, each term only where the batch has that label (``find_*``), with
``N`` the number of atoms. Reported metrics: ``rmse = sqrt(L)``, ``rmse_e = sqrt(<dE^2>) / N``,
``rmse_f``, ``rmse_v = sqrt(<dW^2>) / N``, ``rmse_ae``.
"""

import tensorflow as tf


class EnerLoss:
    """Args: a normalized ``loss`` section and the schedule's ``start_lr``."""

    def __init__(self, section, start_lr):
        self.start_lr = float(start_lr)
        self.pref = {k: (float(section[f"start_pref_{k}"]), float(section[f"limit_pref_{k}"]))
                     for k in ("e", "f", "v", "ae")}
        self.has = {k: (s != 0.0 or l != 0.0) for k, (s, l) in self.pref.items()}

    def metric_names(self):
        """Metric columns in DeePMD-kit's ``lcurve.out`` order."""
        return ["rmse"] + [f"rmse_{k}" for k in ("e", "f", "v", "ae") if self.has[k]]

    def __call__(self, out, batch, lr):
        """``(loss scalar, {metric: value})`` for a model output and a batch."""
        lr = tf.cast(lr, tf.float64)
        natoms = tf.cast(tf.shape(batch["coord"])[1], tf.float64)
        scale = lr / self.start_lr

        def pref(k):
            start, limit = self.pref[k]
            return limit + (start - limit) * scale

        l2 = {
            "e": tf.reduce_mean(tf.square(out["energy"][:, 0] - batch["energy"])),
            "f": tf.reduce_mean(tf.square(out["force"] - batch["force"])),
            "v": tf.reduce_mean(tf.square(out["virial"] - batch["virial"])),
            "ae": tf.reduce_mean(tf.square(out["atom_energy"] - batch["atom_ener"])),
        }
        find = {"e": batch["find_energy"], "f": batch["find_force"],
                "v": batch["find_virial"], "ae": batch["find_atom_ener"]}
        norm = {"e": 1.0 / natoms, "f": 1.0, "v": 1.0 / natoms, "ae": 1.0}
        loss = tf.constant(0.0, tf.float64)
        for k in ("e", "f", "v", "ae"):
            if self.has[k]:
                loss += pref(k) * norm[k] * l2[k] * find[k]
        nan = tf.constant(float("nan"), tf.float64)
        metrics = {"rmse": tf.sqrt(loss)}
        rmse = {"e": tf.sqrt(l2["e"]) / natoms, "f": tf.sqrt(l2["f"]),
                "v": tf.sqrt(l2["v"]) / natoms, "ae": tf.sqrt(l2["ae"])}
        for k in ("e", "f", "v", "ae"):
            if self.has[k]:
                metrics[f"rmse_{k}"] = tf.where(find[k] > 0, rmse[k], nan)
        return loss, metrics


class TensorLoss:
    """DeePMD-kit's ``tensor`` loss for ``dipole``/``polar`` models (constant prefactors).

    With ``n`` the atoms of the selected types per frame and ``k`` the tensor size (3 or 9)::

        L_lc = <(T_i - T_i*)^2>  over the selected atoms, frames and components
        L_gl = <(T - T*)^2>      over frames and components,   T = sum_i T_i
        L    = pref_atomic * L_lc + pref * L_gl / n

    each term only where the batch has that label. Metrics (``lcurve.out``): ``rmse = sqrt(L)``,
    ``rmse_lc = sqrt(L_lc)``, ``rmse_gl = sqrt(L_gl) / n`` (``nan`` without the label).

    Args: a normalized ``loss`` section, the label name (``dipole`` or ``polarizability``;
    the atomic label is ``atomic_<name>``), the tensor size and the model's ``sel_type``.
    """

    def __init__(self, section, label_name, tensor_size, sel_type):
        self.pref = float(section["pref"])
        self.pref_atomic = float(section["pref_atomic"])
        self.label_name, self.size = label_name, int(tensor_size)
        self.sel_type = [int(t) for t in sel_type]

    def metric_names(self):
        """Metric columns in DeePMD-kit's ``lcurve.out`` order."""
        return ["rmse"] + (["rmse_lc"] if self.pref_atomic > 0 else []) + (
            ["rmse_gl"] if self.pref > 0 else [])

    def __call__(self, out, batch, lr=None):
        """``(loss scalar, {metric: value})``; ``lr`` is unused (constant prefactors)."""
        atype = tf.cast(batch["atype"], tf.int32)
        sel = tf.reduce_any(tf.equal(atype[..., None], tf.constant(self.sel_type)), axis=-1)
        sel = tf.cast(sel, tf.float64)                                       # [nf, nloc]
        nf = tf.cast(tf.shape(atype)[0], tf.float64)
        nsel = tf.reduce_sum(sel) / nf                                       # atoms per frame
        nan = tf.constant(float("nan"), tf.float64)
        loss = tf.constant(0.0, tf.float64)
        metrics = {}
        if self.pref_atomic > 0:
            find = batch["find_atomic_" + self.label_name]
            diff = out["atom_tensor"] - batch["atomic_" + self.label_name]
            l_lc = tf.reduce_sum(tf.square(diff) * sel[..., None]) / (nf * nsel * self.size)
            loss += self.pref_atomic * find * l_lc
            metrics["rmse_lc"] = tf.where(find > 0, tf.sqrt(l_lc), nan)
        if self.pref > 0:
            find = batch["find_" + self.label_name]
            l_gl = tf.reduce_mean(tf.square(out["tensor"] - batch[self.label_name]))
            loss += self.pref * find * l_gl / nsel
            metrics["rmse_gl"] = tf.where(find > 0, tf.sqrt(l_gl) / nsel, nan)
        metrics = dict({"rmse": tf.sqrt(loss)}, **metrics)
        return loss, metrics


TENSOR_LABELS = {"dipole": ("dipole", 3), "polar": ("polarizability", 9)}


def make_loss(section, start_lr, model_section):
    """The loss of a normalized ``loss`` section for the normalized ``model`` section."""
    if section["type"] == "tensor":
        fit = model_section["fitting_net"]
        name, size = TENSOR_LABELS[fit["type"]]
        return TensorLoss(section, name, size, fit["sel_type"])
    return EnerLoss(section, start_lr)
