"""Model zoo: cards, embedded models, cache, mirrors, checksums and offline errors (no network)."""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error

import numpy as np
import pytest

import dpkeras.zoo as zoo
from conftest import ROOT, TESTDATA, max_rel
from dpkeras.errors import DPKerasError
from dpkeras.zoo import download as zfetch
from dpkeras.zoo.cards import read_card

DPA1_PB = os.path.join(TESTDATA, "water_dpa1", "frozen_model.pb")
# a stand-in for OC_10M.pb of the same era and kind: a DeePMD-kit 2.2.11 se_atten graph
DPA1_22 = os.path.join(TESTDATA, "legacy_v2_2", "water_se_atten")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """An empty cache, no mirror, and no network: every download attempt fails loudly."""
    monkeypatch.setenv("DPKERAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DPKERAS_ZOO_MIRROR", raising=False)
    monkeypatch.delenv("DPKERAS_ZOO_TRUST_UNVERIFIED", raising=False)
    real = zfetch.urllib.request.urlopen

    def offline(url, *a, **k):
        if str(url).startswith("file://"):
            return real(url, *a, **k)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(zfetch.urllib.request, "urlopen", offline)
    return tmp_path / "cache"


def test_registry_lists_validated_cards():
    assert {"dpa1-oc2m", "dpa1-cho-mini", "water-se-e2-a-mini", "dpa1-mt-cho-water"} <= \
        set(zoo.list())
    assert zoo.card("dpa1-mt-cho-water")["heads"] == ["molecules", "water"]
    for name in zoo.list():
        card = zoo.card(name)
        assert card["heads"] == ["Default"] or name == "dpa1-mt-cho-water"
        assert all(u.startswith("https://") for u in card["urls"])
    with pytest.raises(DPKerasError, match="no model named 'nope'"):
        zoo.card("nope")


@pytest.mark.parametrize("edit, message", [
    ({"urls": ["http://example.org/m.pb"]}, "'urls' entry 'http://example.org/m.pb' is not an "
                                            "https URL"),
    ({"sha256": "abc"}, "'sha256' must be 64 lowercase hex digits"),
    ({"format": "onnx"}, "'format' 'onnx' is not one of"),
    ({"sha256": None}, "'sha256' is null; add 'sha256_note'"),
    ({"licence": "MIT"}, "unknown key 'licence'"),
    ({"name": "other"}, "'name' is 'other'; it must equal the file name 'bad'"),
])
def test_bad_cards_are_rejected_naming_card_and_key(tmp_path, edit, message):
    card = dict(zoo.card("water-se-e2-a-mini"))
    card.pop("embedded")
    card["urls"] = ["https://example.org/m.keras"]
    card["name"] = "bad"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({k: v for k, v in card.items() if k != "license"}))
    with pytest.raises(DPKerasError, match="zoo card bad.json: missing key 'license'"):
        read_card(str(path))
    card.update(edit)
    path.write_text(json.dumps(card))
    with pytest.raises(DPKerasError, match="zoo card bad.json: " + re.escape(message)):
        read_card(str(path))


@pytest.mark.parametrize("name", ["water-se-e2-a-mini", "dpa1-cho-mini"])
def test_embedded_models_load_offline_and_reproduce_their_card(name, isolated_cache):
    from dpkeras.zoo.validation import measure

    model = zoo.load(name)
    card = zoo.card(name)
    assert list(model.get_type_map()) == card["type_map"]
    assert model.get_config_deepmd()["descriptor"]["type"] == card["descriptor"]
    got = measure(name, model)
    val = card["validation"]
    assert got["nframes"] == val["nframes"]
    assert got["rmse_e_atom"] == pytest.approx(val["rmse_e_atom"], rel=1e-5)
    assert got["rmse_f"] == pytest.approx(val["rmse_f"], rel=1e-5)
    assert not os.path.exists(isolated_cache)      # embedded: used in place, nothing cached


@pytest.mark.parametrize("head", ["molecules", "water"])
def test_multitask_zoo_model_serves_each_head_and_reproduces_its_card(head, isolated_cache):
    """The shipped multi-task DPA-1: a united SavedModel archive, unpacked once into the cache;
    each head loads by name and reproduces its card's held-out errors; no head is refused by
    name."""
    from dpkeras.zoo.validation import measure

    card = zoo.card("dpa1-mt-cho-water")
    model = zoo.load("dpa1-mt-cho-water", head=head)
    assert list(model.get_type_map()) == card["type_map"] == ["H", "C", "N", "O"]
    got = measure("dpa1-mt-cho-water", model, head=head)
    val = card["validation"][head]
    assert got["nframes"] == val["nframes"]
    assert got["rmse_e_atom"] == pytest.approx(val["rmse_e_atom"], rel=1e-5)
    assert got["rmse_f"] == pytest.approx(val["rmse_f"], rel=1e-5)
    assert len(list((isolated_cache / "zoo" / "dpa1-mt-cho-water").glob("*.unpacked"))) == 1
    with pytest.raises(DPKerasError, match=r"heads are \['molecules', 'water'\]"):
        zoo.load("dpa1-mt-cho-water", head="nope")
    with pytest.raises(DPKerasError, match="molecules"):
        zoo.load("dpa1-mt-cho-water")


def _mirror(tmp_path, name, src):
    mirror = tmp_path / "mirror"
    mirror.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, mirror / name)
    return mirror


def test_unverified_model_needs_opt_in_then_is_pinned(tmp_path, monkeypatch, isolated_cache):
    """dpa1-oc2m from a local mirror holding a 2.2-era DPA-1 graph under the publisher's file
    name: opt-in, pinned sha256, loads through the frozen-graph reader with DeePMD-kit's
    numbers, then fine-tunes (zoo name as --finetune) with the type map [O, H]."""
    card = zoo.card("dpa1-oc2m")
    assert card["file"] == "OC_10M.pb" and all(u.startswith("https://") for u in card["urls"])
    stand_in = os.path.join(DPA1_22, "frozen_model.pb")
    monkeypatch.setenv("DPKERAS_ZOO_MIRROR", str(_mirror(tmp_path, card["file"], stand_in)))
    with pytest.raises(DPKerasError, match="no checksum is published .* trust_unverified=True"):
        zoo.fetch("dpa1-oc2m")
    path = zoo.fetch("dpa1-oc2m", trust_unverified=True)
    assert path == os.path.join(str(isolated_cache), "zoo", "dpa1-oc2m", "OC_10M.pb")
    assert open(path + ".sha256").read().split()[0] == zfetch.sha256sum(stand_in)
    # the model loads through the DeePMD-kit frozen-graph reader and gives DeePMD-kit's numbers
    model = zoo.load("dpa1-oc2m")              # pinned now: no opt-in needed any more
    from dpkeras.infer import DeepPot

    ref = np.load(os.path.join(DPA1_22, "reference.npz"))
    e, f, _ = DeepPot.from_model(model).eval(ref["coord"][:1], ref["box"][:1], ref["atype"])
    assert max_rel(e, ref["energy"][:1]) < 1e-10 and max_rel(f, ref["force"][:1]) < 1e-9
    # fine-tuning from the zoo name: bias recalibrated on water, a few steps train
    import json

    from conftest import WATER, small_input
    from dpkeras.finetune import load_finetune_input
    from dpkeras.trainer import Trainer

    cfg = small_input([WATER[0]], [WATER[3]], numb_steps=4, disp_freq=2, save_freq=4)
    cfg["model"] = {"type_map": ["O", "H"], "descriptor": {}, "fitting_net": {}}
    inp = tmp_path / "input.json"
    inp.write_text(json.dumps(cfg))
    config, spec = load_finetune_input(str(inp), "dpa1-oc2m", use_pretrain_script=True)
    tuned = Trainer(config, str(tmp_path / "ft"), finetune=spec, jit_compile=False,
                    skip_neighbor_stat=True).run()
    assert tuned.get_type_map() == ["O", "H"]
    assert len((tmp_path / "ft" / "lcurve.out").read_text().splitlines()) >= 3
    # cached: the mirror is gone and nothing is fetched again
    shutil.rmtree(tmp_path / "mirror")
    monkeypatch.setattr(zfetch, "_fetch_into_cache", lambda *a: pytest.fail("re-downloaded"))
    assert zoo.fetch("dpa1-oc2m") == path
    # a cached file that no longer matches the pinned hash is moved aside (it may be the only
    # copy), with a clear error saying where
    with open(path, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(DPKerasError, match="the cached file has sha256 .* was moved aside to "
                                           + re.escape(path + ".corrupt")):
        zoo.fetch("dpa1-oc2m")
    assert not os.path.exists(path) and os.path.isfile(path + ".corrupt")


def _download_card(tmp_path):
    """A valid non-embedded card (the same format as dpa1-oc2m) with a real checksum."""
    card = dict(zoo.card("dpa1-oc2m"), name="pb-test", file="pb-test.pb",
                urls=["https://models.example.org/pb-test.pb", "https://mirror.example.net/x.pb"],
                sha256=zfetch.sha256sum(DPA1_PB), size=os.path.getsize(DPA1_PB))
    card.pop("sha256_note")
    path = tmp_path / "pb-test.json"
    path.write_text(json.dumps(card))
    return read_card(str(path))


def test_corrupt_download_is_rejected_and_deleted(tmp_path, monkeypatch):
    card = _download_card(tmp_path)
    bad = tmp_path / "bad.pb"
    bad.write_bytes(open(DPA1_PB, "rb").read()[:-10] + b"0123456789")
    monkeypatch.setenv("DPKERAS_ZOO_MIRROR", str(_mirror(tmp_path, "pb-test.pb", bad)))
    with pytest.raises(DPKerasError, match=f"expected {card['sha256']}; the download is corrupt"):
        zfetch.fetch_card(card)
    dest = zfetch.cached_path(card)
    assert not os.path.exists(dest) and os.listdir(os.path.dirname(dest)) == []
    # a URL mirror (file://) goes through urllib's streaming download with a progress bar
    good = _mirror(tmp_path / "m2", "pb-test.pb", DPA1_PB)
    monkeypatch.setenv("DPKERAS_ZOO_MIRROR", good.as_uri())
    assert zfetch.fetch_card(card) == dest
    assert zfetch.sha256sum(dest) == card["sha256"]


def test_offline_without_cache_says_where_to_put_the_file(tmp_path, isolated_cache):
    card = _download_card(tmp_path)
    dest = os.path.join(str(isolated_cache), "zoo", "pb-test", "pb-test.pb")
    with pytest.raises(DPKerasError) as err:
        zfetch.fetch_card(card)
    msg = str(err.value)
    assert "https://models.example.org/pb-test.pb: <urlopen error network disabled" in msg
    assert f"Offline, put the file 'pb-test.pb' at {dest}, or in a directory named by " \
           "DPKERAS_ZOO_MIRROR" in msg
    with pytest.raises(DPKerasError, match="dpa1-oc2m: not cached .*AIS Square.*OC_10M.pb"):
        zoo.fetch("dpa1-oc2m", trust_unverified=True)


def test_cli_list_info_fetch(tmp_path):
    env = dict(os.environ, DPKERAS_CACHE=str(tmp_path / "c"), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("DPKERAS_ZOO_MIRROR", None)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "dpkeras.zoo", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True)

    res = run("list")
    assert res.returncode == 0, res.stderr
    assert "water-se-e2-a-mini" in res.stdout and "dpa1-oc2m" in res.stdout
    res = run("info", "dpa1-oc2m")
    assert res.returncode == 0 and json.loads(res.stdout)["format"] == "deepmd-tf-pb"
    res = run("fetch", "water-se-e2-a-mini")
    assert res.returncode == 0 and res.stdout.strip().endswith("water-se-e2-a-mini.keras")
    res = run("fetch", "dpa1-oc2m")
    assert res.returncode == 1 and res.stderr.startswith("dpkeras: error: zoo model dpa1-oc2m")
    res = run("frobnicate")
    assert res.returncode == 1 and "usage: python -m dpkeras.zoo" in res.stderr
