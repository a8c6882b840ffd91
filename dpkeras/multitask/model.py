"""The multi-task model: one shared descriptor layer, one model ("head") per task.

A head is an ordinary single-task model (``EnergyModel``, or whatever
:func:`dpkeras.model.build.build_model` builds for its fitting type, e.g. a dipole model)
whose ``descriptor`` attribute is the one descriptor layer object of the multi-task model, so
evaluating or training a head touches only the shared descriptor and that head's fitting.
Fitting layers named by ``layer_name`` are one :class:`dpkeras.network.SharedDense` per name
across all heads (``shared_layers``).

Weight paths: the descriptor's are those of a single-task model (``embedding_0_0/w0``), a
head's fitting weights are prefixed by the head name (``water_ener/fitting_type_0/w0``), a
shared layer's by the head that created it first.
"""

import keras

from dpkeras.errors import DPKerasError
from dpkeras.network import layer_sharing


def _unique(variables):
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _rebind_descriptor(head, descriptor):
    """Make ``head.descriptor`` the shared layer (dropping the head's own one from Keras'
    tracking, keeping the descriptor-then-fitting weight order)."""
    fitting = head.fitting
    for attr in ("descriptor", "fitting"):
        head._tracker.untrack(getattr(head, attr))
        object.__delattr__(head, attr)
    head.descriptor = descriptor
    head.fitting = fitting


class MultiTaskModel:
    """Args:
      model_section: a normalized multi-task ``model`` section (``{"model_dict": {...}}``,
        :func:`dpkeras.config.multitask.normalize_multitask`).

    Attributes: ``descriptor`` (the shared layer), ``heads`` (``{name: model}`` in input order),
    ``shared_layers`` (``{layer name: SharedDense}``), ``config``.
    """

    def __init__(self, model_section):
        from dpkeras.model.build import build_model

        self.config = model_section
        sections = model_section["model_dict"]
        if not sections:
            raise DPKerasError("model.model_dict: no heads")
        self.shared_layers = {}
        self.heads = {}
        with layer_sharing(self.shared_layers):
            for name, section in sections.items():
                with keras.name_scope(name):
                    self.heads[name] = build_model(section)
        # the shared descriptor, with a single-task model's weight paths
        self.descriptor = build_model(next(iter(sections.values()))).descriptor
        for head in self.heads.values():
            _rebind_descriptor(head, self.descriptor)

    # --- getters ---------------------------------------------------------------------------
    def head_names(self):
        return list(self.heads)

    def head(self, name):
        if name not in self.heads:
            raise DPKerasError(f"no head {name!r} in this multi-task model; its heads are "
                               f"{self.head_names()}")
        return self.heads[name]

    def get_type_map(self):
        return next(iter(self.heads.values())).get_type_map()

    def get_rcut(self):
        return self.descriptor.get_rcut()

    def get_sel(self):
        return self.descriptor.get_sel()

    def get_ntypes(self):
        return len(self.get_type_map())

    def standalone_head(self, name):
        """A single-task copy of head ``name`` with a descriptor of its own (for freezing)."""
        from dpkeras.model.build import build

        src = self.head(name)
        return build(src.get_config_deepmd(), src.get_variables(), f"head {name}")

    def get_config_deepmd(self):
        """The normalized multi-task ``model`` section."""
        return {"model_dict": {h: m.get_config_deepmd() for h, m in self.heads.items()}}

    # --- variables -------------------------------------------------------------------------
    @property
    def weights(self):
        """Every weight once: the descriptor's, then each head's fitting (shared layers where
        first used)."""
        out = list(self.descriptor.weights)
        for m in self.heads.values():
            out += m.fitting.weights
        return _unique(out)

    @property
    def trainable_variables(self):
        return [v for v in self.weights if v.trainable]

    def head_trainable_variables(self, name):
        """What a step of head ``name`` updates: the shared descriptor and that head's fitting
        (shared layers included)."""
        m = self.head(name)
        return _unique([v for v in self.descriptor.weights + m.fitting.weights if v.trainable])

