"""The dpkeras model zoo: pretrained models by name.

Example::

    import dpkeras.zoo
    dpkeras.zoo.list()                          # ['dpa1-cho-mini', 'dpa1-oc2m', ...]
    model = dpkeras.zoo.load("water-se-e2-a-mini")   # an EnergyModel (Keras), offline
    path = dpkeras.zoo.fetch("dpa1-oc2m", trust_unverified=True)   # a local file

The registry is the set of model cards in the top-level ``zoo/cards`` folder (see
:mod:`dpkeras.zoo.cards`); files are cached and verified as described in
:mod:`dpkeras.zoo.download`. ``python -m dpkeras.zoo list | info NAME | fetch NAME`` is the CLI.
"""

import builtins
import os

from dpkeras.errors import DPKerasError
from dpkeras.zoo import download as _download
from dpkeras.zoo.cards import read_cards

FORMAT_KINDS = {"dpkeras-savedmodel": "savedmodel", "keras": "keras", "deepmd-tf-pb": "pb",
                "deepmd-dp": "dp"}
_CARDS = None


def cards():
    """``{name: card}`` of every model in the zoo (validated once, then cached)."""
    global _CARDS
    if _CARDS is None:
        _CARDS = read_cards()
    return _CARDS


def list():  # noqa: A001  (the public name the issue asks for)
    """Names of the zoo's models, sorted."""
    return builtins.list(cards())


def card(name):
    """The card (a dict) of model ``name``."""
    all_cards = cards()
    if name not in all_cards:
        raise DPKerasError(f"zoo: no model named {name!r}; known: {', '.join(all_cards)}")
    return all_cards[name]


def fetch(name, trust_unverified=False):
    """Local path of model ``name``'s file (embedded, cached, mirrored or downloaded).

    ``trust_unverified`` accepts a model whose card has no published sha256 (its hash is
    recorded on first download and checked afterwards)."""
    c = card(name)
    path = _download.fetch_card(c, trust_unverified)
    if c["format"] == "dpkeras-savedmodel" and os.path.isfile(path):
        # unpacked once into the cache (an embedded archive's folder may be read-only); the
        # checksum in the name keeps an older release's unpacked copy apart
        tag = (c["sha256"] or _download.sha256sum(path))[:16]
        path = _unpack(path, _download.cached_path(c) + f".{tag}.unpacked")
    return path


def _unpack(archive, out):
    """A SavedModel archive, unpacked once to ``out``; returns the SavedModel directory."""
    import shutil

    from dpkeras.atomic import atomic_dir

    if not os.path.isdir(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with atomic_dir(out) as tmp:
            try:
                shutil.unpack_archive(archive, tmp)
            except (ValueError, shutil.ReadError) as exc:
                raise DPKerasError(f"{archive}: cannot unpack the SavedModel archive "
                                   f"({exc})") from None
    entries = os.listdir(out)
    if "saved_model.pb" not in entries and len(entries) == 1:
        out = os.path.join(out, entries[0])
    return out


def load(name, head=None, trust_unverified=False):
    """Model ``name`` as a ready :class:`dpkeras.model.ener.EnergyModel` (a Keras model).

    Args:
      name: a zoo model name (see :func:`list`).
      head: the head (branch) to use; ``None``: the only one (``"Default"`` for a
        single-task model); an error naming the heads when the model has several.
      trust_unverified: see :func:`fetch`.
    """
    from dpkeras.load import load, pick_head

    c = card(name)
    if head is not None and head not in c["heads"]:
        raise DPKerasError(f"zoo model {name}: no head {head!r}; its heads are {c['heads']}")
    path = fetch(name, trust_unverified)
    full, kind = load(path)
    model = pick_head(full, head, f"zoo model {name}")
    if kind != FORMAT_KINDS[c["format"]]:
        raise DPKerasError(f"zoo model {name}: the card says format {c['format']} but {path} "
                           f"loaded as {kind}; fix the card")
    if c["type_map"] is not None and builtins.list(model.get_type_map()) != c["type_map"]:
        raise DPKerasError(f"zoo model {name}: the model's type_map {model.get_type_map()} "
                           f"differs from the card's {c['type_map']}; fix the card or the file")
    return model
