"""Embedding and fitting networks in DeePMD-kit's serialized form (``NativeNet`` layers)."""

import numpy as np

from dpkeras.errors import DPKerasError


# --- networks --------------------------------------------------------------------------------
def layer(w, b, idt, activation, resnet):
    return {"@class": "Layer", "@version": 2, "bias": b is not None,
            "use_timestep": idt is not None, "activation_function": activation,
            "resnet": resnet, "precision": "float64", "trainable": True,
            "@variables": {"w": w, "b": b, "idt": idt}}


def embedding_net(weights, neuron, activation, resnet_dt, in_dim=1):
    layers = [layer(w, b, idt, activation, True) for w, b, idt in
              zip(weights["w"], weights["b"], weights["idt"])]
    return {"@class": "EmbeddingNetwork", "@version": 2, "in_dim": in_dim, "neuron": list(neuron),
            "activation_function": activation, "resnet_dt": resnet_dt,
            "bias": weights["b"][0] is not None, "precision": "float64", "layers": layers}


def fitting_net(weights, in_dim, neuron, activation, resnet_dt, out_dim=1):
    layers = []
    prev = in_dim
    for k, (w, b, idt) in enumerate(zip(weights["w"], weights["b"], weights["idt"])):
        # DeePMD-kit's numpy backend adds a residual wherever resnet is true and the width is
        # kept or doubled; TF (and dpkeras) only for kept widths after the first layer
        layers.append(layer(w, b, idt, activation, k > 0 and prev == w.shape[1]))
        prev = w.shape[1]
    layers.append(layer(weights["w_out"], weights["b_out"], None, "none", False))
    return {"@class": "FittingNetwork", "@version": 1, "in_dim": in_dim, "out_dim": out_dim,
            "neuron": list(neuron), "activation_function": activation, "resnet_dt": resnet_dt,
            "precision": "float64", "bias_out": True, "layers": layers}


def read_net(net, path, kind):
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


def activation(name):
    return "linear" if name in (None, "none") else name


def collection(net):
    return {"@class": "NetworkCollection", "@version": 1, "ndim": 0, "ntypes": None,
            "network_type": "embedding_network", "networks": [net]}
