"""Model cards: the zoo's registry, one JSON file per model in the ``zoo/cards/`` folder.

The ``zoo/`` folder sits at the top of the repository and is installed inside the package as
``dpkeras/_zoo`` (see ``setup.py``). A card is validated once, when it is read; any problem raises
:class:`~dpkeras.errors.DPKerasError` naming the card file and the key.

Card keys (all required unless marked optional):

``name``          str, the name users pass to :func:`dpkeras.zoo.load` (equals the file stem)
``description``   str
``format``        ``dpkeras-savedmodel`` | ``keras`` | ``deepmd-tf-pb`` | ``deepmd-dp``
``file``          str, the file name in the cache and in a mirror (a SavedModel is shipped as a
                  ``.zip`` / ``.tar.gz`` archive of its directory)
``embedded``      optional str, path of the model inside the zoo folder (shipped with dpkeras)
``urls``          list of https URLs (mirrors, tried in order); may be empty only for embedded
                  models or when ``download_note`` explains where the file is published
``download_note`` optional str, where to get the file by hand
``sha256``        64 hex digits, or ``null`` when no published checksum exists; ``sha256_note``
                  must then say so, and fetching needs an explicit opt-in (trust on first use)
``size``          int bytes, or ``null`` when unknown
``type_map``      list of element names, or ``null`` when not published (read from the file)
``descriptor``    str (``se_e2_a``, ``se_atten``, ...)
``heads``         list of head names (``["Default"]`` for single-task models)
``training_data`` str
``license``       str
``citation``      str
``validation``    ``null`` or a dict: ``systems`` (paths relative to the repository),
                  ``frames`` (how they were chosen), ``nframes``, ``rmse_e_atom`` (eV/atom),
                  ``rmse_f`` (eV/A), ``measured_with`` (how); for a model with several heads,
                  ``{head: such a dict}`` (each head's own held-out data)
``recipe``        optional str, folder under ``zoo/`` with the training recipe
"""

import json
import os
import re

from dpkeras.errors import DPKerasError

FORMATS = ("dpkeras-savedmodel", "keras", "deepmd-tf-pb", "deepmd-dp")
REQUIRED = {
    "name": str, "description": str, "format": str, "file": str, "urls": list,
    "sha256": (str, type(None)), "size": (int, type(None)), "type_map": (list, type(None)),
    "descriptor": str, "heads": list, "training_data": str, "license": str, "citation": str,
    "validation": (dict, type(None)),
}
OPTIONAL = {"embedded": str, "download_note": str, "sha256_note": str, "recipe": str}
VALIDATION_KEYS = {"systems": list, "frames": str, "nframes": int, "rmse_e_atom": float,
                   "rmse_f": float, "measured_with": str}


def zoo_dir():
    """The zoo folder: ``dpkeras/_zoo`` in an installed package, else ``<repo>/zoo``."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for cand in (os.path.join(pkg, "_zoo"), os.path.join(os.path.dirname(pkg), "zoo")):
        if os.path.isdir(os.path.join(cand, "cards")):
            return cand
    raise DPKerasError(f"the model zoo folder is missing (looked for {pkg}/_zoo and "
                       f"{os.path.dirname(pkg)}/zoo); reinstall dpkeras")


def read_card(path):
    """Read and validate one card file; returns the card dict."""
    where = os.path.basename(path)
    try:
        with open(path) as f:
            card = json.load(f)
    except (OSError, ValueError) as exc:
        raise DPKerasError(f"zoo card {path}: not readable JSON ({exc})") from None
    if not isinstance(card, dict):
        raise DPKerasError(f"zoo card {where}: must be a JSON object")
    for key in card:
        if key not in REQUIRED and key not in OPTIONAL:
            raise DPKerasError(f"zoo card {where}: unknown key {key!r}")
    for key, typ in REQUIRED.items():
        if key not in card:
            raise DPKerasError(f"zoo card {where}: missing key {key!r}")
        if not isinstance(card[key], typ) or isinstance(card[key], bool):
            raise DPKerasError(f"zoo card {where}: {key!r} has the wrong type "
                               f"({type(card[key]).__name__})")
    for key, typ in OPTIONAL.items():
        if key in card and not isinstance(card[key], typ):
            raise DPKerasError(f"zoo card {where}: {key!r} must be a {typ.__name__}")
    stem = os.path.splitext(where)[0]
    if card["name"] != stem:
        raise DPKerasError(f"zoo card {where}: 'name' is {card['name']!r}; it must equal the "
                           f"file name {stem!r}")
    if card["format"] not in FORMATS:
        raise DPKerasError(f"zoo card {where}: 'format' {card['format']!r} is not one of "
                           f"{list(FORMATS)}")
    if os.path.basename(card["file"]) != card["file"] or not card["file"]:
        raise DPKerasError(f"zoo card {where}: 'file' must be a bare file name")
    for url in card["urls"]:
        if not isinstance(url, str) or not url.startswith("https://"):
            raise DPKerasError(f"zoo card {where}: 'urls' entry {url!r} is not an https URL")
    if not card["urls"] and "embedded" not in card and "download_note" not in card:
        raise DPKerasError(f"zoo card {where}: 'urls' is empty; give mirrors, 'embedded' or a "
                           "'download_note'")
    if card["sha256"] is None:
        if "sha256_note" not in card:
            raise DPKerasError(f"zoo card {where}: 'sha256' is null; add 'sha256_note' saying "
                               "why no checksum is published")
        if "embedded" in card:
            raise DPKerasError(f"zoo card {where}: embedded models must have a 'sha256'")
    elif not re.fullmatch(r"[0-9a-f]{64}", card["sha256"]):
        raise DPKerasError(f"zoo card {where}: 'sha256' must be 64 lowercase hex digits")
    if not card["heads"] or not all(isinstance(h, str) for h in card["heads"]):
        raise DPKerasError(f"zoo card {where}: 'heads' must be a non-empty list of names")
    if card["type_map"] is not None and not all(isinstance(t, str) for t in card["type_map"]):
        raise DPKerasError(f"zoo card {where}: 'type_map' must list element names")
    val = card["validation"]
    if val is not None:
        multi = len(card["heads"]) > 1
        if multi and set(val) != set(card["heads"]):
            raise DPKerasError(f"zoo card {where}: 'validation' of a model with heads "
                               f"{card['heads']} must have one entry per head, got {sorted(val)}")
        for head, entry in (val.items() if multi else [(None, val)]):
            prefix = "validation." + (f"{head}." if head else "")
            for key, typ in VALIDATION_KEYS.items():
                if not isinstance(entry, dict) or not isinstance(entry.get(key), typ):
                    raise DPKerasError(f"zoo card {where}: '{prefix}{key}' is missing or not a "
                                       f"{typ.__name__}")
    return card


def read_cards(directory=None):
    """All cards of the zoo, ``{name: card}``, sorted by name."""
    directory = os.path.join(directory or zoo_dir(), "cards")
    cards = {}
    for fname in sorted(os.listdir(directory)):
        if fname.endswith(".json"):
            card = read_card(os.path.join(directory, fname))
            cards[card["name"]] = card
    return cards
