"""Getting a zoo model file onto this machine: embedded copy, cache, mirror or download.

Order: a model shipped inside dpkeras (``embedded``) is used in place; else the cache
(``$DPKERAS_CACHE/zoo/NAME/FILE``, default ``$XDG_CACHE_HOME/dpkeras`` or ``~/.cache/dpkeras``)
is used when it holds the file; else the file is copied from ``$DPKERAS_ZOO_MIRROR`` (a
directory, or a ``file://`` / ``http(s)://`` URL, holding ``FILE``) or downloaded from the
card's ``urls`` in order. A cached file is never downloaded again.

Every file is checked against the card's sha256 (a mismatching cached file is moved aside to
``FILE.corrupt`` and the error says so). Downloads are https only: a plain ``http://`` mirror
or URL needs ``DPKERAS_ZOO_ALLOW_HTTP=1``; local directories and ``file://`` are allowed. A card
without a published checksum (``sha256: null``) is fetched only with ``trust_unverified=True``
(or ``DPKERAS_ZOO_TRUST_UNVERIFIED=1``): its checksum is then computed on first download and
written next to the cached file (``FILE.sha256``), and later uses are checked against it.

Downloads use ``urllib`` and :class:`keras.utils.Progbar`, and are written atomically
(:mod:`dpkeras.atomic`): a killed download never leaves a file under the real name.
``keras.utils.get_file`` is not used: it takes one URL (no mirrors), re-downloads instead of
failing when a cached file's hash differs, and has no notion of a mirror or of an offline error
that says where to put the file.
"""

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request

from dpkeras.atomic import atomic_file, atomic_write_text
from dpkeras.errors import DPKerasError

log = logging.getLogger("dpkeras")
CHUNK = 1 << 20


def cache_dir():
    """Root of the dpkeras download cache."""
    if os.environ.get("DPKERAS_CACHE"):
        return os.path.expanduser(os.environ["DPKERAS_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "dpkeras")


def cached_path(card):
    """Where ``card``'s file lives in the cache (whether or not it is there)."""
    return os.path.join(cache_dir(), "zoo", card["name"], card["file"])


def sha256sum(path):
    """Hex sha256 of a file, or of every file of a directory (sorted relative paths)."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for fname in sorted(files):
                full = os.path.join(root, fname)
                h.update(os.path.relpath(full, path).encode() + b"\0")
                with open(full, "rb") as f:
                    for block in iter(lambda: f.read(CHUNK), b""):
                        h.update(block)
        return h.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _trusted(trust_unverified):
    return trust_unverified or os.environ.get("DPKERAS_ZOO_TRUST_UNVERIFIED") == "1"


def _expected_sha(card, path):
    """The checksum a file must have: the card's, else the one recorded on first download."""
    if card["sha256"]:
        return card["sha256"]
    side = path + ".sha256"
    if os.path.isfile(side):
        with open(side) as f:
            return f.read().split()[0]
    return None


def _verify(card, path, source, embedded=False):
    """Check ``path`` against its expected sha256. A mismatching cached file is moved aside to
    ``PATH.corrupt`` (it may be the only copy) and the error says where."""
    expected = _expected_sha(card, path)
    if expected is None:
        return
    got = sha256sum(path)
    if got == expected:
        return
    if embedded:
        raise DPKerasError(f"zoo model {card['name']}: {source} {path} has sha256 {got}, "
                           f"expected {expected}; the installation is damaged: reinstall dpkeras")
    aside = path + ".corrupt"
    if os.path.isdir(aside):
        shutil.rmtree(aside)
    os.replace(path, aside)
    raise DPKerasError(
        f"zoo model {card['name']}: {source} has sha256 {got}, expected {expected}; the file is "
        f"corrupt or not the published one and was moved aside to {aside}; fetch it again or "
        "fix the mirror")


def _http_allowed():
    return os.environ.get("DPKERAS_ZOO_ALLOW_HTTP") == "1"


def _mirror_sources(card):
    mirror = os.environ.get("DPKERAS_ZOO_MIRROR")
    if not mirror:
        return []
    if mirror.startswith("http://") and not _http_allowed():
        raise DPKerasError(f"DPKERAS_ZOO_MIRROR={mirror} is plain http: a download could be "
                           "altered on the way; use an https:// mirror, a local directory, or "
                           "set DPKERAS_ZOO_ALLOW_HTTP=1 to accept it")
    if "://" in mirror:
        return [mirror.rstrip("/") + "/" + urllib.parse.quote(card["file"])]
    if not os.path.isdir(mirror):
        raise DPKerasError(f"DPKERAS_ZOO_MIRROR={mirror}: no such directory; point it at a "
                           f"directory holding {card['file']!r}, or unset it")
    return [os.path.join(mirror, card["file"])]


def _copy_local(src, tmp):
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)


def _download(url, tmp, expected_size):
    """Stream ``url`` into ``tmp`` with a progress bar; returns the number of bytes."""
    import keras

    with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as fout:
        total = resp.headers.get("Content-Length")
        total = int(total) if total else expected_size
        bar = keras.utils.Progbar(total, unit_name="B") if total else None
        n = 0
        for block in iter(lambda: resp.read(CHUNK), b""):
            fout.write(block)
            n += len(block)
            if bar is not None:
                bar.update(min(n, total))
            elif n % (64 * CHUNK) < CHUNK:
                log.info("  %d MiB", n >> 20)
        fout.flush()
        os.fsync(fout.fileno())
    return n


def _fetch_into_cache(card, dest):
    sources = _mirror_sources(card) + list(card["urls"])
    errors = []
    for src in sources:
        if src.startswith("http://") and not _http_allowed():
            errors.append(f"{src}: plain http refused (set DPKERAS_ZOO_ALLOW_HTTP=1 to allow)")
            continue
        try:
            with atomic_file(dest) as tmp:
                if "://" in src:
                    log.info("downloading %s from %s", card["name"], src)
                    _download(src, tmp, card["size"])
                elif os.path.isfile(src):
                    log.info("copying %s from the mirror %s", card["name"], src)
                    _copy_local(src, tmp)
                else:
                    raise FileNotFoundError(f"the mirror directory has no file "
                                            f"{os.path.basename(src)!r}")
                got = sha256sum(tmp)
                expected = card["sha256"]
                if expected and got != expected:
                    raise DPKerasError(
                        f"zoo model {card['name']}: {src} has sha256 {got}, expected {expected}; "
                        "the download is corrupt or not the published file and was deleted")
            return src, got
        except (OSError, urllib.error.URLError, ValueError) as exc:
            errors.append(f"{src}: {exc}")
    tried = "; ".join(errors) if errors else "no mirror set and the card lists no URL"
    note = f" {card['download_note']}" if card.get("download_note") else ""
    raise DPKerasError(
        f"zoo model {card['name']}: not cached and could not be fetched ({tried}).{note} "
        f"Offline, put the file {card['file']!r} at {dest}, or in a directory named by "
        "DPKERAS_ZOO_MIRROR")


def fetch_card(card, trust_unverified=False):
    """Local path of ``card``'s model file, fetching it if needed (see the module doc)."""
    from dpkeras.zoo.cards import zoo_dir

    if "embedded" in card:
        path = os.path.join(zoo_dir(), card["embedded"])
        if not os.path.exists(path):
            raise DPKerasError(f"zoo model {card['name']}: embedded file {path} is missing; "
                               "reinstall dpkeras")
        _verify(card, path, "the embedded file", embedded=True)
        return path
    dest = cached_path(card)
    if card["sha256"] is None and not _trusted(trust_unverified) \
            and not os.path.isfile(dest + ".sha256"):
        raise DPKerasError(
            f"zoo model {card['name']}: no checksum is published for it "
            f"({card['sha256_note']}); pass trust_unverified=True (CLI: --trust_unverified, or "
            "DPKERAS_ZOO_TRUST_UNVERIFIED=1) to accept the file as first downloaded; its sha256 "
            "is then recorded and checked on every later use")
    if os.path.isfile(dest):
        _verify(card, dest, "the cached file")
        return dest
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if not os.access(os.path.dirname(dest), os.W_OK):
            raise PermissionError("not writable")
    except OSError as exc:
        raise DPKerasError(f"zoo model {card['name']}: cannot write the download cache "
                           f"{os.path.dirname(dest)} ({exc}); set DPKERAS_CACHE to a writable "
                           f"directory (now {os.environ.get('DPKERAS_CACHE') or 'unset'})") \
            from None
    src, got = _fetch_into_cache(card, dest)
    if card["sha256"] is None:
        atomic_write_text(dest + ".sha256", f"{got}  {card['file']}\n")
        log.warning("zoo model %s: no published checksum; recorded sha256 %s of the file from "
                    "%s (trust on first use)", card["name"], got, src)
    return dest
