"""DeePMD-kit's ``ener`` loss with learning-rate-dependent prefactors.

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
