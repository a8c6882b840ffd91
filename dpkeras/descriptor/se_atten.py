"""``se_atten`` (DPA-1) and ``se_atten_v2``: DeePMD-kit's attention-based descriptor (TF backend).

All neighbors within ``rcut`` form one group of ``sel`` slots sorted by distance whatever their
type (``mixed_types``); types enter through a type embedding. For atom ``i`` with normalized
environment matrix ``R~_i [nnei, 4]`` (padded slots included, as in DeePMD-kit)::

    e_t     = act(onehot(t) W_te (+ b_te))   type embedding [ntypes, T]; row ntypes (padding) = 0
  concat mode (tebd_input_mode "concat"):
    G_i     = embed([R~_ij,0, e_{t_j}, e_{t_i}])      (type_one_side: [R~_ij,0, e_{t_j}])
  strip mode ("strip"; se_atten_v2):
    G_i     = G_s * (1 + E_ij),  G_s = embed(R~_ij,0),  E_ij = embed_strip([e_{t_j}, e_{t_i}])
              (E_ij *= w_ij with smooth_type_embedding; as DeePMD-kit TF, type_one_side is
              ignored in strip mode)
    r^_ij   = l2_normalize(R~_ij,1:4)
    for each of attn_layer layers:
        Q, K, V = l2_normalize(G W_q + b_q), ... (over the attn width)
        A       = softmax_j(Q K^T masked on padded keys) * mask_query      (no 1/sqrt(d) scaling)
                  smooth_type_embedding: A = softmax_j((Q K^T + 20) w_i w_j - 20) w_i w_j
        A      *= r^ r^T                      (attn_dotr)
        A      *= 1 - I                       (attn_mask)
        G       = layer_norm(G + (A V) W_o + b_o)     (eps ln_eps, trainable gamma/beta)
    T_i     = R~_i^T G_i / nnei               [4, M1]
    D_i     = T_i^T T_i[:, :M2]               [M1, M2] -> M1 * M2

with DeePMD-kit's smooth weight ``w_ij = clip(1 - (1 - rcut_smth * s_ij)^3, 0, 1)`` of the raw
radial entry ``s_ij = s(r)/r`` (0 on padded slots and excluded pairs). With ``exclude_types`` an
excluded pair is masked out (``R~`` row and attention mask set to zero) or, with
``smooth_type_embedding``, its ``R~`` row is set to ``davg[t_i]`` radial and ``w_ij = 0``.

The ``ener`` fitting of such a model is one net for all types fed ``[D_i, e_{t_i}]``; the
descriptor exposes ``e_{t_i}`` through :meth:`DescrptSeAtten.atom_type_embedding`.
"""

import keras
import numpy as np
import tensorflow as tf

from dpkeras.descriptor.base import Descriptor
from dpkeras.descriptor.type_embedding import TypeEmbedding, type_embedding_config
from dpkeras.env_mat import EnvMat
from dpkeras.errors import DPKerasError
from dpkeras.network import EmbeddingNet, child_seed, embedding_net_dict, layer_dict, \
    net_collection, net_dtype, net_variables
from dpkeras.descriptor.registry import register

# DeePMD-kit's additive mask for padded keys, -(2 << 32)
_NEG = -float(2 << 32)
# DeePMD-kit's shift of the attention logits in the smooth (smooth_type_embedding) variant
_SMOOTH_SHIFT = 20.0


def _softmax_with_padding(z, ntrim):
    """``softmax(z)`` over the last axis as if ``ntrim`` more logits equal to ``-20`` followed
    (the smooth variant's padded keys, cut off by a truncated neighbor list)."""
    m = tf.stop_gradient(tf.maximum(tf.reduce_max(z, -1, keepdims=True), -_SMOOTH_SHIFT))
    e = tf.exp(z - m)
    pad = tf.cast(ntrim, z.dtype) * tf.exp(-_SMOOTH_SHIFT - m)
    return e / (tf.reduce_sum(e, -1, keepdims=True) + pad)


def _dense(layer, name, in_dim, out_dim, seed):
    w = layer.add_weight(name=name + "_w", shape=(in_dim, out_dim),
                         initializer=keras.initializers.RandomNormal(
                             stddev=1.0 / (in_dim + out_dim) ** 0.5, seed=seed))
    b = layer.add_weight(name=name + "_b", shape=(out_dim,),
                         initializer=keras.initializers.RandomNormal(
                             stddev=1.0, seed=None if seed is None else seed + 1))
    return w, b


@keras.saving.register_keras_serializable(package="dpkeras")
class AttentionLayer(keras.layers.Layer):
    """One gated self-attention layer of ``se_atten`` (see the module docstring).

    Weights: ``q``, ``k``, ``v`` ``[M1, attn]`` (+ bias), ``o`` ``[attn, M1]`` (+ bias), layer norm
    ``gamma``/``beta`` ``[M1]``.
    """

    def __init__(self, dim, attn, dotr=True, do_mask=False, ln_eps=1e-3, trainable_ln=True,
                 seed=None, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.dim, self.attn = int(dim), int(attn)
        self.dotr, self.do_mask = bool(dotr), bool(do_mask)
        self.ln_eps, self.trainable_ln = float(ln_eps), bool(trainable_ln)
        self.seed = seed
        s = (lambda i: None) if seed is None else (lambda i: int(seed) + 2 * i)
        self.wq, self.bq = _dense(self, "q", self.dim, self.attn, s(0))
        self.wk, self.bk = _dense(self, "k", self.dim, self.attn, s(1))
        self.wv, self.bv = _dense(self, "v", self.dim, self.attn, s(2))
        self.wo, self.bo = _dense(self, "o", self.attn, self.dim, s(3))
        self.gamma = self.add_weight(name="gamma", shape=(self.dim,), initializer="ones",
                                     trainable=self.trainable_ln)
        self.beta = self.add_weight(name="beta", shape=(self.dim,), initializer="zeros",
                                    trainable=self.trainable_ln)
        self.built = True

    def call(self, g, rhat, nmask, sw=None, ntrim=0):
        """``g [n, w, M1]``, ``rhat [n, w, 3]``, ``nmask [n, w]`` (float 1/0) over a window of
        ``w`` neighbor slots; ``sw [n, w]``: the smooth weights (smooth_type_embedding), which
        replace the mask. ``ntrim``: padded slots cut off after the window (they only enter the
        smooth softmax, each as a logit of exactly ``-20``)."""
        n, w = tf.shape(g)[0], tf.shape(g)[1]
        g2 = tf.reshape(g, [-1, self.dim])

        def project(wt, b):   # a 2-d product [n * w, M1] x [M1, attn], then l2-normalized
            return tf.nn.l2_normalize(tf.reshape(tf.matmul(g2, wt) + b, [n, w, self.attn]), -1)

        q, k, v = project(self.wq, self.bq), project(self.wk, self.bk), project(self.wv, self.bv)
        a = tf.matmul(q, k, transpose_b=True)                       # [n, w(query), w(key)]
        if sw is None:
            kmask = nmask[:, None, :]
            a = a * kmask + _NEG * (1.0 - kmask)
            a = tf.nn.softmax(a, axis=-1)
            a = a * nmask[:, :, None]
        else:
            pair = sw[:, None, :] * sw[:, :, None]
            a = _softmax_with_padding((a + _SMOOTH_SHIFT) * pair - _SMOOTH_SHIFT, ntrim) * pair
        if self.dotr:
            a = a * tf.matmul(rhat, rhat, transpose_b=True)
        if self.do_mask:
            nnei = tf.shape(a)[-1]
            a = a * (1.0 - tf.eye(nnei, dtype=a.dtype))
        # (A V) W_o as A (V W_o): the [w, w] product then has M1 < attn columns
        vo = tf.reshape(tf.matmul(tf.reshape(v, [-1, self.attn]), self.wo), [n, w, self.dim])
        g = g + tf.matmul(a, vo) + self.bo
        mean = tf.reduce_mean(g, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.square(g - mean), axis=-1, keepdims=True)
        return (g - mean) / tf.sqrt(var + self.ln_eps) * self.gamma + self.beta

    def get_numpy(self):
        return {n: getattr(self, n).numpy() for n in
                ("wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "gamma", "beta")}

    def set_numpy(self, weights):
        from dpkeras.errors import DPKerasError

        for n, val in weights.items():
            var = getattr(self, n)
            if tuple(var.shape) != tuple(val.shape):
                raise DPKerasError(f"attention weight {var.path} has shape {tuple(var.shape)} "
                                   f"but the source has {tuple(val.shape)}")
            var.assign(val)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(dim=self.dim, attn=self.attn, dotr=self.dotr, do_mask=self.do_mask,
                   ln_eps=self.ln_eps, trainable_ln=self.trainable_ln, seed=self.seed)
        return cfg


@keras.saving.register_keras_serializable(package="dpkeras")
@register("se_atten", "dpa1")
class DescrptSeAtten(Descriptor):
    """The ``se_atten`` descriptor (alias ``dpa1``); output ``[nf, nloc, neuron[-1] * axis_neuron]``.

    ``call(rij, mask, atype, type_counts=None, nei_type=None)``: ``nei_type [nf, nloc, nnei]`` are
    the neighbor types (``ntypes`` for padded slots); it is required.
    """

    MIXED_TYPES = True
    # the neighbor list may be cut after its last real neighbor (see call)
    trims_padding = True

    def __init__(self, ntypes, rcut, rcut_smth, sel, neuron=(10, 20, 40), axis_neuron=4,
                 resnet_dt=False, activation_function="tanh", type_one_side=False,
                 attn=128, attn_layer=2, attn_dotr=True, attn_mask=False, ln_eps=None,
                 trainable_ln=True, set_davg_zero=True, exclude_types=(), type_embedding=None,
                 tebd_input_mode="concat", smooth_type_embedding=False, trainable=True,
                 seed=None, precision="float64", shared_type_embedding=None, tabulated=None,
                 **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(trainable=trainable, **kwargs)
        self.ntypes = int(ntypes)
        self.rcut, self.rcut_smth = float(rcut), float(rcut_smth)
        self.sel = [int(sum(sel))] if isinstance(sel, (list, tuple)) else [int(sel)]
        self.nnei = self.sel[0]
        self.neuron = [int(n) for n in neuron]
        self.axis_neuron = int(axis_neuron)
        self.resnet_dt = bool(resnet_dt)
        self.activation_function = activation_function
        self.type_one_side = bool(type_one_side)
        self.attn, self.attn_layer = int(attn), int(attn_layer)
        self.attn_dotr, self.attn_mask = bool(attn_dotr), bool(attn_mask)
        self.ln_eps = 1e-3 if ln_eps is None else float(ln_eps)
        self.trainable_ln = bool(trainable_ln)
        self.set_davg_zero = bool(set_davg_zero)
        self.exclude_types = sorted({tuple(sorted(map(int, p))) for p in exclude_types})
        if tebd_input_mode not in ("concat", "strip"):
            raise ValueError(f"tebd_input_mode must be 'concat' or 'strip', got "
                             f"{tebd_input_mode!r}")
        self.tebd_input_mode = tebd_input_mode
        self.smooth_type_embedding = bool(smooth_type_embedding)
        self.seed = seed
        self.precision = precision
        self.net_dtype = net_dtype(precision)
        self.type_embedding_config = type_embedding_config(type_embedding, seed)
        # a hybrid passes the one type embedding all its members share
        self.type_embed = shared_type_embedding or TypeEmbedding.from_section(
            self.ntypes, self.type_embedding_config, name="type_embedding")
        self.tebd_dim = self.type_embed.dim()
        self.env_mat = EnvMat(self.ntypes, self.nnei, self.rcut, self.rcut_smth, name="env_mat")
        strip = self.tebd_input_mode == "strip"
        in_dim = 1 if strip else 1 + self.tebd_dim * (1 if self.type_one_side else 2)
        # {"all": {"nspline", "table_info"}}: compressed (dpkeras.compress, or DeePMD-kit's
        # dp compress): the strip-mode net of the radial entry is a table of polynomials and the
        # type-pair net a table of its value at every type pair
        self.tabulated = tabulated
        if tabulated is not None:
            if not strip:
                raise ValueError("only strip mode's embedding net can be tabulated")
            from dpkeras.descriptor.se_base import net_key
            from dpkeras.tabulate import PairTable, TabulatedEmbedding

            spec = tabulated[net_key(())]
            self.embedding_net = TabulatedEmbedding(spec["nspline"], self.neuron[-1],
                                                    spec["table_info"], dtype=self.net_dtype,
                                                    name="embedding")
            self.embedding_strip = PairTable((self.ntypes + 1) ** 2, self.neuron[-1],
                                             dtype=self.net_dtype, name="embedding_strip")
        else:
            self.embedding_net = EmbeddingNet(in_dim, self.neuron,
                                              activation_function=activation_function,
                                              resnet_dt=resnet_dt, seed=child_seed(seed, 0),
                                              dtype=self.net_dtype, name="embedding")
            # strip mode: the net of the (neighbor, center) type-embedding pair
            self.embedding_strip = EmbeddingNet(
                2 * self.tebd_dim, self.neuron, activation_function=activation_function,
                resnet_dt=resnet_dt, seed=child_seed(seed, 2), dtype=self.net_dtype,
                name="embedding_strip") if strip else None
        self.attention_layers = [
            AttentionLayer(self.neuron[-1], self.attn, dotr=self.attn_dotr,
                           do_mask=self.attn_mask, ln_eps=self.ln_eps,
                           trainable_ln=self.trainable_ln, seed=child_seed(seed, 1, i),
                           dtype=self.net_dtype, name=f"attention_layer_{i}")
            for i in range(self.attn_layer)]
        self.built = True

    # --- getters ---------------------------------------------------------------------------
    def get_dim_out(self):
        return self.neuron[-1] * self.axis_neuron

    # --- math ------------------------------------------------------------------------------
    def call(self, rij, mask, atype, type_counts=None, nei_type=None):
        """``rij [nf, nloc, w, 3]``, ``mask``, ``nei_type [nf, nloc, w]`` over the first ``w <=
        nnei`` slots of the distance-sorted neighbor list: slots after the window must all be
        padding (:func:`dpkeras.nlist.trim_padding`). Their contribution, which depends only on
        the center's type, is added back exactly (:meth:`_padding_tail`)."""
        if nei_type is None:
            raise ValueError("se_atten needs the neighbor types (nei_type)")
        nf, nloc = tf.shape(atype)[0], tf.shape(atype)[1]
        nnei, w = self.nnei, tf.shape(rij)[2]
        env = tf.reshape(self.env_mat(rij, mask, atype), [-1, w, 4])       # [n, w, 4]
        atype_f = tf.reshape(atype, [-1])
        nei_type = tf.reshape(tf.cast(nei_type, tf.int32), [-1, w])
        nmask = tf.cast(tf.reshape(mask, [-1, w]), env.dtype)
        env, g = self._embed_and_attend(env, atype_f, nei_type, nmask, ntrim=nnei - w)
        t = tf.matmul(env, g, transpose_a=True)                          # [n, 4, M1]
        t = (t + tf.gather(self._padding_tail(w), atype_f)) / float(nnei)
        d = tf.matmul(t, t[:, :, : self.axis_neuron], transpose_a=True)  # [n, M1, M2]
        return tf.cast(tf.reshape(d, [nf, nloc, self.get_dim_out()]), tf.float64)

    def _embed_and_attend(self, env, atype_f, nei_type, nmask, ntrim):
        """``(env, G)``: the environment matrix as the networks see it (exclusions applied, in
        the network precision) and ``G [n, w, M1]`` after the attention layers."""
        w, m1 = tf.shape(env)[1], self.neuron[-1]
        sw = self._smooth_weight(env, atype_f) if self.smooth_type_embedding else None
        if self.exclude_types:
            keep = [[0.0 if tuple(sorted((a, b))) in self.exclude_types else 1.0
                     for b in range(self.ntypes + 1)] for a in range(self.ntypes)]
            keep = tf.gather_nd(tf.constant(keep, env.dtype),
                                tf.stack([tf.tile(atype_f[:, None], [1, w]), nei_type], -1))
            if sw is None:
                nmask = nmask * keep
                env = env * keep[..., None]
            else:
                avg = tf.gather(self.env_mat.davg[:, 0, 0], atype_f)[:, None, None]
                env = tf.where(keep[..., None] > 0, env, avg + tf.zeros_like(env))
                sw = sw * keep
        # float64 up to here; the networks (and what follows) in their precision
        env, nmask = tf.cast(env, self.net_dtype), tf.cast(nmask, self.net_dtype)
        sw = None if sw is None else tf.cast(sw, self.net_dtype)
        tebd = tf.cast(self.type_embed.table(), self.net_dtype)                # [ntypes + 1, T]
        n = tf.shape(env)[0]
        if self.embedding_strip is None:
            parts = [env[:, :, :1], tf.gather(tebd, nei_type)]
            if not self.type_one_side:
                ctr = tf.gather(tebd, atype_f)[:, None, :]
                parts.append(tf.tile(ctr, [1, w, 1]))
            x = tf.concat(parts, axis=-1)
            g = tf.reshape(self.embedding_net(tf.reshape(x, [-1, x.shape[-1]])), [n, w, m1])
        else:
            g = tf.reshape(self.embedding_net(tf.reshape(env[:, :, :1], [-1, 1])), [n, w, m1])
            g = g + g * self._pair_type_embedding(tebd, atype_f, nei_type, sw)
        rhat = tf.nn.l2_normalize(env[:, :, 1:], -1)
        for layer in self.attention_layers:
            g = layer(g, rhat, nmask, sw, ntrim=ntrim)
        return env, g

    def _padding_tail(self, w):
        """``[ntypes, 4, M1]``: for a center of each type, ``sum_s R~_s^T G_s`` over the padded
        slots ``s = w .. nnei-1``. A padded slot's row is ``-davg/dstd`` of its center type and
        slot; it attends to nothing, so its ``G`` is its own embedding passed through each
        layer's residual + layer norm: each slot is evaluated alone, as a window of one."""
        nt, ntail = self.ntypes, self.nnei - w
        env = self.env_mat.padded_rows(w, self.nnei)                      # [nt, ntail, 4]
        env = tf.reshape(env, [-1, 1, 4])
        ctr = tf.repeat(tf.range(nt), ntail)
        env, g = self._embed_and_attend(env, ctr, tf.fill([nt * ntail, 1], nt),
                                        tf.zeros([nt * ntail, 1], env.dtype), ntrim=0)
        return tf.einsum("tsk,tsm->tkm", tf.reshape(env, [nt, ntail, 4]),
                         tf.reshape(g, [nt, ntail, self.neuron[-1]]))

    def _smooth_weight(self, env, atype_f):
        """``w_ij [n, nnei]`` of the module docstring, from the normalized radial column."""
        avg = tf.gather(self.env_mat.davg[:, 0, 0], atype_f)[:, None]
        std = tf.gather(self.env_mat.dstd[:, 0, 0], atype_f)[:, None]
        s = env[:, :, 0] * std + avg
        u = 1.0 - self.rcut_smth * s
        return tf.clip_by_value(1.0 - u * u * u, 0.0, 1.0)

    def _pair_type_embedding(self, tebd, atype_f, nei_type, sw):
        """Strip mode ``E_ij [n, nnei, M1]``: :meth:`pair_table` looked up."""
        e = tf.gather(self.pair_table(tebd), atype_f[:, None] * (self.ntypes + 1) + nei_type)
        return e if sw is None else e * sw[..., None]

    def pair_table(self, tebd=None):
        """Strip mode ``[(ntypes + 1)^2, M1]``: ``E`` of every (center, neighbor) type pair,
        padding type included, row ``t_i * (ntypes + 1) + t_j``: the strip net evaluated once
        per pair (``tebd``: the type embedding table, in the network precision), or a
        compressed model's table."""
        from dpkeras.tabulate import PairTable

        if isinstance(self.embedding_strip, PairTable):
            return tf.convert_to_tensor(self.embedding_strip.table)
        if tebd is None:
            tebd = tf.cast(self.type_embed.table(), self.net_dtype)
        nt = self.ntypes + 1
        nei = tf.tile(tebd[None, :, :], [nt, 1, 1])                  # [center, neighbor, T]
        ctr = tf.tile(tebd[:, None, :], [1, nt, 1])
        return self.embedding_strip(tf.reshape(tf.concat([nei, ctr], -1), [nt * nt, -1]))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(ntypes=self.ntypes, rcut=self.rcut, rcut_smth=self.rcut_smth, sel=self.sel,
                   neuron=self.neuron, axis_neuron=self.axis_neuron, resnet_dt=self.resnet_dt,
                   activation_function=self.activation_function,
                   type_one_side=self.type_one_side, attn=self.attn,
                   attn_layer=self.attn_layer, attn_dotr=self.attn_dotr,
                   attn_mask=self.attn_mask, ln_eps=self.ln_eps, trainable_ln=self.trainable_ln,
                   set_davg_zero=self.set_davg_zero,
                   exclude_types=[list(p) for p in self.exclude_types],
                   type_embedding=self.type_embedding_config,
                   tebd_input_mode=self.tebd_input_mode,
                   smooth_type_embedding=self.smooth_type_embedding, seed=self.seed,
                   precision=self.precision)
        if self.tabulated is not None:
            cfg["tabulated"] = self.tabulated
        return cfg

    # --- DeePMD-kit's serialized dict --------------------------------------------------------
    def serialize(self, type_map=None):
        """DeePMD-kit's ``dpa1`` dict (``@version`` 2), as its TF backend serializes
        ``se_atten`` (so that ``dp convert-backend`` rebuilds the same TF graph)."""
        if self.tabulated is not None:
            raise DPKerasError(f"a compressed (tabulated) {self.descriptor_type} descriptor has "
                               "no DeePMD-kit serialized form (DeePMD-kit's TF backend cannot "
                               "serialize it either); save the model as .keras or a "
                               "SavedModel directory")
        if self.smooth_type_embedding:
            raise DPKerasError(f"a {self.descriptor_type} descriptor with smooth_type_embedding "
                               "has no DeePMD-kit serialized form: DeePMD-kit's own TF backend "
                               "cannot serialize it either (its smooth variant differs from the "
                               "other backends); save it as .keras or a SavedModel directory")
        strip = self.tebd_input_mode == "strip"
        if strip and self.type_one_side:
            raise DPKerasError("se_atten with tebd_input_mode 'strip' and type_one_side = true "
                               "has no DeePMD-kit serialized form (DeePMD-kit's TF backend "
                               "cannot serialize it either); set type_one_side to false or "
                               "save as .keras")
        te = self.type_embedding_config
        if len(te["neuron"]) != 1:
            raise DPKerasError(f"a type embedding with {len(te['neuron'])} layers has no "
                               "DeePMD-kit serialized form (DeePMD-kit's TF backend serializes "
                               "only one layer); save it as .keras or a SavedModel directory")
        w, ntypes, tebd, prec = self.get_variables(), self.ntypes, self.tebd_dim, self.net_dtype
        in_dim = 1 if strip else 1 + tebd * (1 if self.type_one_side else 2)

        def net(arrays, width):
            return embedding_net_dict(arrays, self.neuron, self.activation_function,
                                      self.resnet_dt, width)

        emb = dict(net_collection(net(w["embeddings"][()], in_dim)), ntypes=ntypes)
        common = {"nnei": self.nnei, "embed_dim": self.neuron[-1], "hidden_dim": self.attn,
                  "dotr": self.attn_dotr, "do_mask": self.attn_mask, "scaling_factor": 1.0,
                  "normalize": True, "temperature": None, "precision": prec}
        layers = []
        for a in w["attention"]:
            in_proj = layer_dict(np.concatenate([a["wq"], a["wk"], a["wv"]], axis=1),
                                 np.concatenate([a["bq"], a["bk"], a["bv"]]), None, "none", False)
            out_proj = layer_dict(a["wo"], a["bo"], None, "none", False)
            layers.append(dict(common, attention_layer=dict(
                common, in_proj=in_proj, out_proj=out_proj, bias=True, smooth=False,
                num_heads=1),
                attn_layer_norm={"@class": "LayerNorm", "@version": 1, "eps": self.ln_eps,
                                 "trainable": self.trainable_ln, "precision": prec,
                                 "@variables": {"w": a["gamma"], "b": a["beta"]}},
                trainable_ln=self.trainable_ln, ln_eps=self.ln_eps))
        attention = {"@class": "NeighborGatedAttention", "@version": 1, "scaling_factor": 1.0,
                     "normalize": True, "temperature": None, "layer_num": self.attn_layer,
                     "nnei": self.nnei, "embed_dim": self.neuron[-1], "hidden_dim": self.attn,
                     "dotr": self.attn_dotr, "do_mask": self.attn_mask,
                     "trainable_ln": self.trainable_ln, "ln_eps": self.ln_eps,
                     "precision": prec, "attention_layers": layers}
        out = {
            "@class": "Descriptor", "type": "dpa1", "@version": 2, "rcut": self.rcut,
            "rcut_smth": self.rcut_smth, "sel": [self.nnei], "ntypes": ntypes,
            "neuron": self.neuron, "axis_neuron": self.axis_neuron,
            "set_davg_zero": self.set_davg_zero, "attn": self.attn,
            "attn_layer": self.attn_layer, "attn_dotr": self.attn_dotr,
            "attn_mask": self.attn_mask, "activation_function": self.activation_function,
            "resnet_dt": self.resnet_dt, "smooth_type_embedding": False,
            "tebd_input_mode": self.tebd_input_mode, "trainable_ln": self.trainable_ln,
            "ln_eps": self.ln_eps, "precision": prec, "embeddings": emb,
            "attention_layers": attention,
            "env_mat": {"rcut": self.rcut, "rcut_smth": self.rcut_smth, "protection": 0.0,
                        "use_exp_switch": False},
            "exclude_types": [list(p) for p in self.exclude_types], "env_protection": 0.0,
            "@variables": {"davg": w["davg"], "dstd": w["dstd"]}, "type_map": type_map,
            "trainable": self.trainable, "type_one_side": self.type_one_side, "spin": None,
            "type_embedding": self.type_embed.serialize(type_map),
            "use_tebd_bias": te["use_tebd_bias"], "tebd_dim": tebd,
        }
        if strip:
            out["embeddings_strip"] = dict(net_collection(net(w["embedding_strip"], 2 * tebd)),
                                           ntypes=ntypes)
        out.update(scaling_factor=1.0, normalize=True, temperature=None,
                   concat_output_tebd=True, use_econf_tebd=False)
        return out

    @classmethod
    def from_serialized(cls, data, ntypes, source):
        """``(section, variables, type_embedding section)`` of a ``dpa1`` dict, in DeePMD-kit
        TF's conventions (which dpkeras follows)."""
        where = f"{source}: descriptor (dpa1)"
        d = data
        if d.get("smooth_type_embedding"):
            raise DPKerasError(f"{where}: smooth_type_embedding = true (se_atten_v2) follows the "
                               "PyTorch/numpy convention, which differs from DeePMD-kit's TF one "
                               "that dpkeras implements; convert the TF .pb instead")
        for key, want in (("env_protection", 0.0), ("scaling_factor", 1.0), ("normalize", True),
                          ("temperature", None), ("concat_output_tebd", True),
                          ("use_econf_tebd", False)):
            if d.get(key, want) != want:
                raise DPKerasError(f"{where}: {key} = {d[key]!r} is not supported (only "
                                   f"{want!r}, as in DeePMD-kit's TF se_atten)")
        mode = d.get("tebd_input_mode", "concat")
        if mode not in ("concat", "strip"):
            raise DPKerasError(f"{where}: tebd_input_mode {mode!r} is not supported (concat, "
                               "strip)")
        if mode == "strip" and d.get("type_one_side"):
            raise DPKerasError(f"{where}: tebd_input_mode 'strip' with type_one_side = true is "
                               "not supported (DeePMD-kit's TF backend cannot serialize it "
                               "either)")
        te_section, te_vars = TypeEmbedding.from_serialized(d["type_embedding"], ntypes,
                                                            d.get("use_tebd_bias", True), where)
        tebd_dim = int(te_section["neuron"][-1])
        nets = d["embeddings"]["networks"]
        if d["embeddings"].get("ndim", 0) != 0 or len(nets) != 1:
            raise DPKerasError(f"{where}: expected one type-independent embedding net (ndim 0)")
        in_dim = 1 if mode == "strip" else 1 + tebd_dim * (1 if d.get("type_one_side") else 2)
        if int(nets[0]["in_dim"]) != in_dim:
            raise DPKerasError(f"{where}: embedding net input width {nets[0]['in_dim']}, "
                               f"expected {in_dim} for tebd_input_mode {mode!r}")
        nnei = int(np.sum(d["sel"]))
        variables = {
            "davg": np.asarray(d["@variables"]["davg"], np.float64).reshape(ntypes, nnei, 4),
            "dstd": np.asarray(d["@variables"]["dstd"], np.float64).reshape(ntypes, nnei, 4),
            "embeddings": {(): net_variables(nets[0], source, "embedding")},
            "type_embedding": te_vars, "attention": [],
        }
        if mode == "strip":
            strip = d["embeddings_strip"]["networks"]
            if len(strip) != 1 or int(strip[0]["in_dim"]) != 2 * tebd_dim:
                raise DPKerasError(f"{where}: expected one strip-mode type-pair net of input "
                                   f"width {2 * tebd_dim} (neighbor and center type "
                                   "embeddings)")
            variables["embedding_strip"] = net_variables(strip[0], source, "embedding")
        att = d["attention_layers"]
        attn = int(d["attn"])
        for k, item in enumerate(att.get("attention_layers", [])):
            a = item["attention_layer"]
            if not a.get("bias", True) or a.get("num_heads", 1) != 1 or a.get("smooth"):
                raise DPKerasError(f"{where}: attention layer {k} has no bias, several heads or "
                                   "the smooth variant, which dpkeras does not support")
            w_in = np.asarray(a["in_proj"]["@variables"]["w"], np.float64)
            b_in = np.asarray(a["in_proj"]["@variables"]["b"], np.float64)
            ln = item["attn_layer_norm"]["@variables"]
            variables["attention"].append({
                "wq": w_in[:, :attn], "wk": w_in[:, attn:2 * attn], "wv": w_in[:, 2 * attn:],
                "bq": b_in[:attn], "bk": b_in[attn:2 * attn], "bv": b_in[2 * attn:],
                "wo": np.asarray(a["out_proj"]["@variables"]["w"], np.float64),
                "bo": np.asarray(a["out_proj"]["@variables"]["b"], np.float64),
                "gamma": np.asarray(ln["w"], np.float64), "beta": np.asarray(ln["b"], np.float64)})
        # the layer norms carry the eps they use (a null descriptor ln_eps means 1e-3 to TF but
        # 1e-5 to the numpy backend)
        eps = {float(item["attn_layer_norm"]["eps"]) for item in att.get("attention_layers", [])}
        if len(eps) > 1:
            raise DPKerasError(f"{where}: attention layers with different ln_eps {sorted(eps)} "
                               "are not supported")
        ln_eps = eps.pop() if eps else (1e-3 if d.get("ln_eps") is None else float(d["ln_eps"]))
        if len(variables["attention"]) != int(d["attn_layer"]):
            raise DPKerasError(f"{where}: attn_layer = {d['attn_layer']} but "
                               f"{len(variables['attention'])} attention layers are stored")
        section = {
            "type": "se_atten", "sel": nnei, "rcut": float(d["rcut"]),
            "rcut_smth": float(d["rcut_smth"]), "neuron": list(d["neuron"]),
            "axis_neuron": int(d["axis_neuron"]), "resnet_dt": bool(d["resnet_dt"]),
            "activation_function": d.get("activation_function", "tanh"),
            "type_one_side": bool(d.get("type_one_side", False)), "attn": attn,
            "attn_layer": int(d["attn_layer"]), "attn_dotr": bool(d["attn_dotr"]),
            "attn_mask": bool(d["attn_mask"]), "ln_eps": ln_eps,
            "trainable_ln": bool(d.get("trainable_ln", True)),
            "set_davg_zero": bool(d.get("set_davg_zero", True)),
            "exclude_types": [list(p) for p in d.get("exclude_types", [])],
            "tebd_input_mode": mode, "smooth_type_embedding": False,
            "trainable": bool(d.get("trainable", True)),
        }
        if d.get("precision") == "float32":
            section["precision"] = "float32"
        return section, variables, te_section


@keras.saving.register_keras_serializable(package="dpkeras")
@register("se_atten_v2")
class DescrptSeAttenV2(DescrptSeAtten):
    """``se_atten_v2``: ``se_atten`` in strip mode with the smooth type embedding."""

    def __init__(self, *args, **kwargs):
        kwargs.update(tebd_input_mode="strip", smooth_type_embedding=True)
        super().__init__(*args, **kwargs)
