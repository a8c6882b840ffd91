"""Dense building blocks shared by descriptors and fitting nets.

``EmbeddingNet`` and ``FittingNet`` follow DeePMD-kit's layer rules exactly:

* hidden layer ``k`` computes ``h = act(x @ W_k + b_k)`` (times a trainable timestep ``idt_k`` when
  ``resnet_dt``);
* embedding nets add a skip connection when the width is kept (``x + h``) or doubled
  (``concat([x, x]) + h``);
* fitting nets add ``x + h`` only when the width is kept, and end with a linear output layer.

``layer_names`` (DeePMD-kit's fitting ``layer_name``) makes layers with the same name one
:class:`SharedDense` object, looked up in the registry of the enclosing :func:`layer_sharing`
block (the heads of a multi-task model) or, outside one, private to the net.
"""

import contextlib
import contextvars
import math

import keras
import numpy as np
import tensorflow as tf

from dpkeras.errors import DPKerasError

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SHARED_LAYERS = contextvars.ContextVar("dpkeras_shared_layers", default=None)
_COMPUTE_PREC = contextvars.ContextVar("dpkeras_compute_prec", default=None)


@contextlib.contextmanager
def compute_precision(dtype):
    """Within the block, every ``DenseStack`` built computes its hidden layers in ``dtype``
    (``"float16"``/``"bfloat16"``; ``None``: in its own dtype): DeePMD-kit's
    ``training.mixed_precision`` ``compute_prec``. The weights stay in the layer's dtype."""
    token = _COMPUTE_PREC.set(dtype)
    try:
        yield
    finally:
        _COMPUTE_PREC.reset(token)


@contextlib.contextmanager
def layer_sharing(registry):
    """Within the block, named layers (``layer_names``) of every ``DenseStack`` built are taken
    from, or added to, ``registry`` (a dict ``name -> SharedDense``)."""
    token = _SHARED_LAYERS.set(registry)
    try:
        yield registry
    finally:
        _SHARED_LAYERS.reset(token)


def gelu_tanh(x):
    """GELU, tanh form ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, written out: TF 2.21's
    ``tf.nn.gelu(approximate=True)`` deviates from it by ~1e-9, DeePMD-kit's op does not."""
    return 0.5 * x * (1.0 + tf.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


ACTIVATIONS = {
    "tanh": tf.tanh,
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,
    "softplus": tf.nn.softplus,
    "sigmoid": tf.sigmoid,
    "gelu": gelu_tanh,
    "gelu_tf": gelu_tanh,
    "linear": tf.identity,
    "none": tf.identity,
}


def net_dtype(precision):
    """The dtype of the networks of a section with DeePMD-kit's ``precision`` key."""
    return "float32" if precision == "float32" else "float64"


def get_activation(name):
    """Map a DeePMD-kit ``activation_function`` name to a TF function."""
    key = "none" if name is None else str(name).lower()
    if key not in ACTIVATIONS:
        raise DPKerasError(
            f"activation_function {name!r} is not supported; use one of {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key]


def child_seed(seed, *index):
    """A distinct, reproducible seed for sub-network ``index`` (``None`` stays ``None``).

    Networks built from one config seed must not start identical (as DeePMD-kit shifts its seed
    between networks), or symmetric copies would learn the same thing.
    """
    if seed is None:
        return None
    s = int(seed)
    for i in index:
        s = (s * 1000003 + 7919 * (int(i) + 1)) % (2 ** 31 - 1)
    return s


def _initializer(seed, stddev):
    return keras.initializers.RandomNormal(stddev=stddev, seed=seed)


@keras.saving.register_keras_serializable(package="dpkeras")
class DenseStack(keras.layers.Layer):
    """A stack of dense layers with DeePMD-kit's residual rules.

    Args:
      in_dim: input width.
      neuron: widths of the hidden layers.
      activation_function: DeePMD-kit activation name.
      resnet_dt: multiply each hidden output by a trainable timestep ``idt``.
      residual: ``"embedding"`` (skip on equal or doubled width) or ``"fitting"`` (equal only).
      out_dim: width of a final linear layer, or ``None`` for no output layer.
      out_bias: whether the final linear layer has a bias.
      use_bias: whether the hidden layers have biases.
      seed: initializer seed (each weight gets ``seed + k``).
      compute_prec: ``None``, or ``"float16"``/``"bfloat16"``: hidden layers cast their input,
        weights and biases to it, apply the activation (and timestep) there and cast the result
        back (DeePMD-kit's mixed precision, ``deepmd/tf/utils/network.py``); skips and the
        output layer stay in the layer's dtype. Default: :func:`compute_precision`'s.

    Input ``[n, in_dim]`` → output ``[..., neuron[-1]]`` (or ``[..., out_dim]``).
    """

    def __init__(self, in_dim, neuron, activation_function="tanh", resnet_dt=False,
                 residual="embedding", out_dim=None, out_bias=True, seed=None, use_bias=True,
                 layer_names=None, compute_prec=None, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.compute_prec = compute_prec or _COMPUTE_PREC.get()
        self.in_dim = int(in_dim)
        self.neuron = [int(n) for n in neuron]
        self.activation_function = activation_function
        self.resnet_dt = bool(resnet_dt)
        self.residual = residual
        self.out_dim = None if out_dim is None else int(out_dim)
        self.out_bias = bool(out_bias)
        self.use_bias = bool(use_bias)
        self.seed = seed
        self._act = get_activation(activation_function)
        self.layer_names = None if layer_names is None else list(layer_names)
        registry = _SHARED_LAYERS.get()
        registry = {} if registry is None else registry
        self.ws, self.bs, self.idts = [], [], []
        prev = self.in_dim
        for k, width in enumerate(self.neuron):
            s = None if seed is None else int(seed) + 3 * k
            shared = self._shared_layer(registry, k, prev, width, self.use_bias, bool(
                self.resnet_dt and self._skip_kind(k, prev, width)), s)
            if shared is not None:
                self.ws.append(shared.w)
                self.bs.append(shared.b)
                self.idts.append(shared.idt)
                prev = width
                continue
            self.ws.append(self.add_weight(
                name=f"w{k}", shape=(prev, width),
                initializer=_initializer(s, 1.0 / (prev + width) ** 0.5)))
            self.bs.append(self.add_weight(
                name=f"b{k}", shape=(width,),
                initializer=_initializer(None if s is None else s + 1, 1.0))
                if self.use_bias else None)
            # as in DeePMD-kit, the timestep exists only on residual layers
            self.idts.append(self.add_weight(
                name=f"idt{k}", shape=(width,),
                initializer=keras.initializers.RandomNormal(
                    mean=0.1, stddev=0.001, seed=None if s is None else s + 2))
                if self.resnet_dt and self._skip_kind(k, prev, width) else None)
            prev = width
        shared = None
        if self.out_dim is not None:
            s = None if seed is None else int(seed) + 3 * len(self.neuron)
            shared = self._shared_layer(registry, len(self.neuron), prev, self.out_dim,
                                        out_bias, False, s, std_b=None)
        if shared is not None:
            self.w_out, self.b_out = shared.w, shared.b
        elif self.out_dim is not None:
            self.w_out = self.add_weight(
                name="w_out", shape=(prev, self.out_dim),
                initializer=_initializer(s, 1.0 / (prev + self.out_dim) ** 0.5))
            self.b_out = self.add_weight(
                name="b_out", shape=(self.out_dim,), initializer="zeros") if out_bias else None
        self.built = True

    def _shared_layer(self, registry, k, in_dim, width, use_bias, has_idt, seed, std_b=1.0):
        """The ``SharedDense`` of layer ``k`` when ``layer_names[k]`` names one, else None."""
        name = self.layer_names[k] if self.layer_names and k < len(self.layer_names) else None
        if name is None:
            return None
        spec = (in_dim, width, bool(use_bias), bool(has_idt), self.dtype)
        if name in registry:
            if registry[name].spec != spec:
                raise DPKerasError(
                    f"layer_name {name!r}: the layers sharing this name differ in shape "
                    f"((in, out, bias, timestep, dtype) {registry[name].spec} vs {spec}); "
                    "layers with the same name need the same neuron, resnet_dt, precision and "
                    "input width")
            return registry[name]
        registry[name] = SharedDense(*spec[:4], seed=seed, std_b=std_b, dtype=self.dtype,
                                     name=name)
        return registry[name]

    def _skip_kind(self, k, prev, width):
        """``"same"``, ``"double"`` or ``None``: the skip connection of layer ``k`` (prev -> width).

        A fitting net's first layer never has one (DeePMD-kit).
        """
        if k == 0 and self.residual == "fitting":
            return None
        if prev == width:
            return "same"
        if self.residual == "embedding" and width == 2 * prev:
            return "double"
        return None

    def call(self, x):
        prev = self.in_dim
        low = self.compute_prec
        cast = (lambda v: v) if low is None else (lambda v: tf.cast(v, low))
        for k, width in enumerate(self.neuron):
            if k == 0 and self.in_dim == 1:   # a [n, 1] x [1, m] product is a broadcast
                h = cast(x) * cast(self.ws[0][0])
            else:
                h = tf.matmul(cast(x), cast(self.ws[k]))
            h = self._act(h if self.bs[k] is None else h + cast(self.bs[k]))
            kind = self._skip_kind(k, prev, width)
            if self.idts[k] is not None:
                h = h * cast(self.idts[k])
            if low is not None:
                h = tf.cast(h, x.dtype)
            if kind == "same":
                x = x + h
            elif kind == "double":
                x = tf.concat([x, x], axis=-1) + h
            else:
                x = h
            prev = width
        if self.out_dim is not None:
            x = tf.matmul(x, self.w_out)
            if self.b_out is not None:
                x = x + self.b_out
        return x

    def get_numpy(self):
        """Weights as plain lists: ``{"w": [...], "b": [...], "idt": [...] or None, "w_out", "b_out"}``."""
        out = {
            "w": [v.numpy() for v in self.ws],
            "b": [None if v is None else v.numpy() for v in self.bs],
            "idt": [None if v is None else v.numpy() for v in self.idts],
        }
        if self.out_dim is not None:
            out["w_out"] = self.w_out.numpy()
            out["b_out"] = None if self.b_out is None else self.b_out.numpy()
        return out

    def set_numpy(self, weights):
        """Inverse of :meth:`get_numpy`; shapes are checked."""
        pairs = list(zip(self.ws, weights["w"]))
        pairs += [(v, val) for v, val in zip(self.bs, weights["b"]) if v is not None]
        idt = weights.get("idt") or [None] * len(self.idts)
        pairs += [(v, val) for v, val in zip(self.idts, idt) if v is not None]
        if self.out_dim is not None:
            pairs.append((self.w_out, weights["w_out"]))
            if self.b_out is not None:
                pairs.append((self.b_out, weights["b_out"]))
        for var, val in pairs:
            if tuple(var.shape) != tuple(val.shape):
                raise DPKerasError(
                    f"weight {var.path} has shape {tuple(var.shape)} but the source has "
                    f"{tuple(val.shape)}: the network sizes in the config do not match the model")
            var.assign(val)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(in_dim=self.in_dim, neuron=self.neuron,
                   activation_function=self.activation_function, resnet_dt=self.resnet_dt,
                   residual=self.residual, out_dim=self.out_dim, out_bias=self.out_bias,
                   seed=self.seed, use_bias=self.use_bias, layer_names=self.layer_names)
        if self.compute_prec is not None:
            cfg["compute_prec"] = self.compute_prec
        return cfg


@keras.saving.register_keras_serializable(package="dpkeras")
class SharedDense(keras.layers.Layer):
    """The weights of one dense layer (``w [in_dim, width]``, ``b``, ``idt``) used by several
    ``DenseStack`` objects: DeePMD-kit's ``layer_name`` sharing. Initialized as the
    ``DenseStack`` layer it stands for (``std_b`` None: a zero bias, as output layers)."""

    def __init__(self, in_dim, width, use_bias=True, has_idt=False, seed=None, std_b=1.0,
                 **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.spec = (int(in_dim), int(width), bool(use_bias), bool(has_idt), self.dtype)
        self.seed, self.std_b = seed, std_b
        self.w = self.add_weight(name="w", shape=(in_dim, width),
                                 initializer=_initializer(seed, 1.0 / (in_dim + width) ** 0.5))
        init_b = "zeros" if std_b is None else _initializer(
            None if seed is None else seed + 1, std_b)
        self.b = self.add_weight(name="b", shape=(width,), initializer=init_b) \
            if use_bias else None
        self.idt = self.add_weight(
            name="idt", shape=(width,), initializer=keras.initializers.RandomNormal(
                mean=0.1, stddev=0.001, seed=None if seed is None else seed + 2)) \
            if has_idt else None
        self.built = True

    def get_config(self):
        cfg = super().get_config()
        in_dim, width, use_bias, has_idt = self.spec[:4]
        cfg.update(in_dim=in_dim, width=width, use_bias=use_bias, has_idt=has_idt,
                   seed=self.seed, std_b=self.std_b)
        return cfg


@keras.saving.register_keras_serializable(package="dpkeras")
class EmbeddingNet(DenseStack):
    """DeePMD-kit embedding net: ``[n, in_dim] -> [n, neuron[-1]]``, skips on kept/doubled width."""

    def __init__(self, in_dim, neuron, **kwargs):
        kwargs["residual"] = "embedding"
        kwargs.setdefault("out_dim", None)
        super().__init__(in_dim, neuron, **kwargs)


@keras.saving.register_keras_serializable(package="dpkeras")
class FittingNet(DenseStack):
    """DeePMD-kit fitting net: hidden layers with skips on kept width, then a linear output.

    ``[n, in_dim] -> [n, out_dim]``.
    """

    def __init__(self, in_dim, neuron, out_dim=1, **kwargs):
        kwargs["residual"] = "fitting"
        super().__init__(in_dim, neuron, out_dim=out_dim, **kwargs)


# --- DeePMD-kit's serialized networks (``NativeNet`` layers of its ``serialize()`` dicts) -----
def layer_dict(w, b, idt, activation, resnet):
    """One dense layer (``w [in, out]``, ``b [out]`` or None, ``idt [out]`` or None)."""
    return {"@class": "Layer", "@version": 2, "bias": b is not None,
            "use_timestep": idt is not None, "activation_function": activation,
            "resnet": resnet, "precision": "float64", "trainable": True,
            "@variables": {"w": w, "b": b, "idt": idt}}


def embedding_net_dict(weights, neuron, activation, resnet_dt, in_dim=1):
    """DeePMD-kit's ``EmbeddingNetwork`` of a net's arrays (:meth:`DenseStack.get_numpy`)."""
    layers = [layer_dict(w, b, idt, activation, True) for w, b, idt in
              zip(weights["w"], weights["b"], weights["idt"])]
    return {"@class": "EmbeddingNetwork", "@version": 2, "in_dim": in_dim, "neuron": list(neuron),
            "activation_function": activation, "resnet_dt": resnet_dt,
            "bias": weights["b"][0] is not None, "precision": "float64", "layers": layers}


def fitting_net_dict(weights, in_dim, neuron, activation, resnet_dt, out_dim=1):
    """DeePMD-kit's ``FittingNetwork`` of a net's arrays (hidden layers and the output)."""
    layers = []
    prev = in_dim
    for k, (w, b, idt) in enumerate(zip(weights["w"], weights["b"], weights["idt"])):
        # DeePMD-kit's numpy backend adds a residual wherever resnet is true and the width is
        # kept or doubled; TF (and dpkeras) only for kept widths after the first layer
        layers.append(layer_dict(w, b, idt, activation, k > 0 and prev == w.shape[1]))
        prev = w.shape[1]
    layers.append(layer_dict(weights["w_out"], weights["b_out"], None, "none", False))
    return {"@class": "FittingNetwork", "@version": 1, "in_dim": in_dim, "out_dim": out_dim,
            "neuron": list(neuron), "activation_function": activation, "resnet_dt": resnet_dt,
            "precision": "float64", "bias_out": True, "layers": layers}


def net_variables(net, path, kind):
    """The arrays (:meth:`DenseStack.set_numpy`'s layout) of a serialized ``kind``
    (``"embedding"``/``"fitting"``) net, checking that its residual connections are the ones
    dpkeras' (DeePMD-kit TF's) layer rules make."""
    layers = net["layers"]
    hidden = layers[:-1] if kind == "fitting" else layers
    out = {"w": [], "b": [], "idt": []}
    prev = net["in_dim"]
    for k, layer in enumerate(hidden):
        v = layer["@variables"]
        w = np.asarray(v["w"], np.float64)
        width = w.shape[1]
        ours = (prev == width or width == 2 * prev) if kind == "embedding" else \
            (k > 0 and prev == width)
        theirs = bool(layer.get("resnet")) and (prev == width or width == 2 * prev)
        if ours != theirs:
            raise DPKerasError(f"{path}: {kind} layer {k} ({prev} -> {width}) has a residual "
                               "connection that dpkeras' TF-compatible layer rules do not "
                               "reproduce; this model cannot be loaded exactly")
        out["w"].append(w)
        out["b"].append(None if v.get("b") is None else np.asarray(v["b"], np.float64))
        idt = v.get("idt")
        if idt is not None and not ours:
            raise DPKerasError(f"{path}: {kind} layer {k} has a timestep on a non-residual "
                               "layer, which dpkeras does not support")
        out["idt"].append(None if idt is None else np.asarray(idt, np.float64).reshape(-1))
        prev = width
    if kind == "fitting":
        v = layers[-1]["@variables"]
        out["w_out"] = np.asarray(v["w"], np.float64)
        out["b_out"] = None if v.get("b") is None else np.asarray(v["b"], np.float64)
    return out


def activation_name(name):
    """dpkeras' name of a serialized activation (``none`` is ``linear``)."""
    return "linear" if name in (None, "none") else name


def net_collection(net):
    """A ``NetworkCollection`` of one type-independent (``ndim`` 0) embedding net."""
    return {"@class": "NetworkCollection", "@version": 1, "ndim": 0, "ntypes": None,
            "network_type": "embedding_network", "networks": [net]}
