"""Fine-tuning from a pretrained model (``python -m dpkeras.train --finetune PRETRAINED``).

Semantics follow DeePMD-kit (``docs/finetune.md`` has the user's view):

* PRETRAINED is anything :func:`dpkeras.load.load_model` reads (DeePMD-kit ``.pb`` /
  ``.dp``, dpkeras SavedModel, ``.keras``, run directory) or a name resolved by
  :func:`resolve_pretrained` (the model zoo, when installed).
* The model section of input.json must equal the pretrained one (``type_map`` and the
  ``trainable`` flags aside), else an error lists the differences; with
  ``use_pretrain_script`` the ``descriptor``, ``type_embedding`` and ``fitting_net`` sections are
  taken from the pretrained model, keeping input.json's ``trainable`` flags.
* Branches: a single-head model has one branch, ``Default``. ``RANDOM`` keeps the descriptor
  (and type embedding) and starts a freshly initialized fitting net, whose bias is then set
  from the data (``set-by-statistic``), as DeePMD-kit does.
* type_map: the downstream ``model.type_map`` may list the pretrained elements in any order, and
  for type-embedding descriptors (se_atten, se_atten_v2) any subset of them. Every per-type
  weight is selected/reordered by element name (the model's ``change_type_map``), so the
  fine-tuned model carries the downstream type_map and gives exactly the pretrained numbers on
  the same atoms. DeePMD-kit's TF backend instead keeps the full pretrained type_map; the
  energies and forces are the same either way.
* Energy bias: ``change-by-statistic`` (default) on up to ``model.data_bias_nsample`` frames of
  every training system (:mod:`dpkeras.change_bias`).
"""

import copy
import json
import logging
import os

import numpy as np

from dpkeras.errors import DPKerasError
from dpkeras.config import DEFAULT_HEAD, differences
from dpkeras.model.type_map import implicit_type_embedding, remap_section, type_index

log = logging.getLogger("dpkeras")

DEFAULT_BRANCH = DEFAULT_HEAD   # "Default", DeePMD-kit's name of a single-task model's branch
RANDOM = "RANDOM"
SECTIONS = ("descriptor", "type_embedding", "fitting_net")


# --- the pretrained model ---------------------------------------------------------------------
def resolve_pretrained(name):
    """A local path for ``name``: the path itself when it exists, else what the model zoo
    (``dpkeras.zoo.fetch(name)``) returns, when the zoo is installed."""
    if os.path.exists(name):
        return name
    try:
        from dpkeras import zoo
    except ImportError:
        zoo = None
    fetch = getattr(zoo, "fetch", None)
    if fetch is None:
        raise DPKerasError(f"--finetune {name}: no such file or directory (and no model zoo to "
                           "resolve it as a name)")
    return fetch(name)


class Pretrained:
    """A loaded pretrained model: ``path``, ``kind``, ``branches`` (name -> normalized model
    section) and ``heads`` (name -> the branch's single-task model)."""

    def __init__(self, name):
        from dpkeras.config import normalize_model
        from dpkeras.load import heads_of, load
        from dpkeras.multitask import MultiTaskModel
        from dpkeras.tabulate import refuse_training

        self.path = resolve_pretrained(name)
        model, self.kind = load(self.path)
        refuse_training(model, self.path)
        # a multi-task model: one branch per head; a single-head model is the branch "Default"
        self.heads = heads_of(model)
        self.multitask = isinstance(model, MultiTaskModel)
        self.branches = {h: normalize_model(m.get_config_deepmd())
                         for h, m in self.heads.items()}

    def branch(self, name):
        """``(branch name, random_fitting)`` for ``--model_branch name``. ``None`` is the one
        branch of a single-task model and, as DeePMD-kit, ``RANDOM`` for a multi-task one."""
        names = list(self.branches)
        if name in (None, "") and self.multitask:
            log.info("%s is a multi-task model and no --model_branch was given: keeping its "
                     "descriptor with a new fitting net (branches: %s)", self.path, names)
            name = RANDOM
        if name in (None, "", RANDOM):
            return names[0], name == RANDOM
        if name not in self.branches:
            raise DPKerasError(f"--model_branch {name}: {self.path} has no such branch; its "
                               f"branches are {names + [RANDOM]} ({RANDOM}: keep the descriptor "
                               "and start a new fitting net)")
        return name, False


# --- the model section ------------------------------------------------------------------------
def _user_trainable(raw_model):
    out = {}
    for key in SECTIONS:
        sec = raw_model.get(key)
        if isinstance(sec, dict) and "trainable" in sec:
            out[key] = sec["trainable"]
    return out


def model_section(raw_model, pretrained, branch=None, use_pretrain_script=False):
    """The normalized model section of the fine-tuned model.

    Args:
      raw_model: input.json's ``model`` section as written (not normalized).
      pretrained: a :class:`Pretrained`.
      branch: ``--model_branch`` (``None``, a branch name or ``RANDOM``).
      use_pretrain_script: take descriptor / type_embedding / fitting_net from the pretrained
        model (keeping input.json's ``trainable`` flags) instead of requiring them equal.

    Returns ``(section, branch name, random_fitting, idx)`` with ``idx`` from
    :func:`type_index`.
    """
    from dpkeras.config import normalize_model

    name, random_fitting = pretrained.branch(branch)
    p_sec = pretrained.branches[name]
    new_map = raw_model.get("type_map") or list(p_sec["type_map"])
    if not isinstance(new_map, list) or not all(isinstance(e, str) for e in new_map):
        raise DPKerasError("model.type_map: expected a list of element names")
    idx = type_index(p_sec["type_map"], new_map, pretrained.path)
    target = implicit_type_embedding(remap_section(p_sec, idx, new_map, pretrained.path))
    trainable = _user_trainable(raw_model)
    if use_pretrain_script:
        merged = copy.deepcopy(raw_model)
        merged["type_map"] = list(new_map)
        for key in SECTIONS:
            if key == "fitting_net" and random_fitting and raw_model.get(key):
                continue   # RANDOM: the fitting net is input.json's
            if target.get(key) is None:
                merged.pop(key, None)
            else:
                merged[key] = copy.deepcopy(target[key])
            if key in trainable and merged.get(key) is not None:
                merged[key]["trainable"] = trainable[key]
        merged.setdefault("fitting_net", {})
        return normalize_model(merged), name, random_fitting, idx
    try:
        user = implicit_type_embedding(normalize_model(raw_model))
    except DPKerasError as exc:
        raise DPKerasError(f"{exc} (with --finetune, pass --use_pretrain_script to take the "
                           "model section from the pretrained model)") from None
    diffs = []
    for key in SECTIONS:
        if key == "fitting_net" and random_fitting:
            continue
        diffs += differences(user.get(key), target.get(key), f"model.{key}",
                             ignore=("trainable",))
    if diffs:
        shown = "; ".join(f"{p}: input.json {json.dumps(a)} vs pretrained {json.dumps(b)}"
                          for p, a, b in diffs[:20])
        more = f"; and {len(diffs) - 20} more" if len(diffs) > 20 else ""
        raise DPKerasError(f"the model section of input.json differs from the pretrained model "
                           f"{pretrained.path} (branch {name}): {shown}{more}. Make it equal, "
                           "or pass --use_pretrain_script to take the pretrained one")
    return user, name, random_fitting, idx


def load_finetune_input(path, pretrained, branch=None, use_pretrain_script=False):
    """Read input.json at ``path`` and return ``(normalized config, FinetuneSpec)``."""
    from dpkeras.config import normalize, read_input

    raw = read_input(path)
    from dpkeras.config import is_multitask_input

    if is_multitask_input(raw):   # multi-task fine-tuning: finetune_head per head
        if branch:
            raise DPKerasError(f"{path}: --model_branch is for a single-task input; in a "
                               "multi-task input give model.model_dict.<head>.finetune_head")
        p = pretrained if isinstance(pretrained, Pretrained) else Pretrained(pretrained)
        if use_pretrain_script:
            raw = complete_multitask_input(raw, p)
        try:
            config = normalize(raw)
        except DPKerasError as exc:
            raise DPKerasError(str(exc).replace("input.json:", f"{path}:", 1)) from None
        return multitask_finetune(config, p, use_pretrain_script)
    if branch is None and isinstance(raw.get("model"), dict):
        branch = raw["model"].get("finetune_head")   # DeePMD-kit's key for the branch
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise DPKerasError(f"{path}: no 'model' section")
    p = pretrained if isinstance(pretrained, Pretrained) else Pretrained(pretrained)
    try:
        section, name, random_fitting, idx = model_section(raw["model"], p, branch,
                                                           use_pretrain_script)
        config = normalize(dict(raw, model=section))
    except DPKerasError as exc:
        raise DPKerasError(str(exc).replace("input.json:", f"{path}:", 1)) from None
    return config, FinetuneSpec(p, name, random_fitting, idx)


# --- initialization ---------------------------------------------------------------------------
class FinetuneSpec:
    """What :func:`initialize` needs: the pretrained model, the branch, whether the fitting
    net starts fresh, and the type indices of the downstream type_map in the pretrained one."""

    def __init__(self, pretrained, branch, random_fitting, idx):
        self.pretrained, self.branch = pretrained, branch
        self.random_fitting, self.idx = random_fitting, list(idx)
        self.errors = {}   # what -> (rmse_e eV/atom, rmse_f eV/A) on the validation data

    @property
    def path(self):
        return self.pretrained.path

    # the protocol of dpkeras.trainer.Trainer(finetune=...); *_data: {head: DataSystems}
    def initialize(self, model, train_data, valid_data, ntest, seed):
        train, valid = _single(train_data), _single(valid_data)
        return initialize(model, self, train, valid or train, ntest, seed)

    def report(self, model, train_data, valid_data):
        self.errors["fine-tuned model"] = report_error(
            model, _single(valid_data) or _single(train_data), "fine-tuned model")


def _single(data):
    """The one head's entry of a single-task trainer's ``{head: data}``."""
    (value,) = data.values()
    return value


def load_weights(model, spec):
    """Set the pretrained weights, remapped to the downstream type_map, into ``model``; with
    ``RANDOM`` the fitting net keeps its fresh initialization and the bias is zero."""
    p = spec.pretrained
    src = p.heads[spec.branch]
    new_map = [src.get_type_map()[i] for i in spec.idx]
    if new_map != src.get_type_map():
        src = src.change_type_map(new_map, p.path)
    variables = src.get_variables()
    if spec.random_fitting:
        fresh = model.fitting.get_variables()
        variables.update(fitting=fresh["fitting"], bias_atom_e=fresh["bias_atom_e"])
    model.set_variables(variables, p.path)


def initialize(model, spec, train_data, valid_data, ntest, seed):
    """Load the pretrained weights into ``model`` (built from the fine-tuning section) and
    recalibrate its energy bias on ``train_data``; logs the validation error of the
    pretrained model before and after the recalibration. Returns the bias mode used."""
    from dpkeras.change_bias import recalibrate, samples_from_data

    p = spec.pretrained
    load_weights(model, spec)
    log.info("fine-tuning from %s (%s, branch %s%s), type_map %s", p.path, p.kind, spec.branch,
             ", new fitting net" if spec.random_fitting else "", model.get_type_map())
    mode = "set-by-statistic" if spec.random_fitting else "change-by-statistic"
    errors = spec.errors
    if not spec.random_fitting:
        what = "pretrained model, before bias recalibration"
        errors[what] = report_error(model, valid_data, what)
    recalibrate(model, samples_from_data(train_data, ntest, seed), mode)
    what = "pretrained model, after bias recalibration"
    errors[what] = report_error(model, valid_data, what)
    return mode


VALID_FRAMES = 20


def validation_error(model, data, nframes=VALID_FRAMES):
    """RMSE of the energy per atom (eV/atom) and of the forces (eV/A) over the first
    ``nframes`` frames of every system of ``data`` (``nan`` where labels are absent)."""
    from dpkeras.change_bias import predict

    de, df = [], []
    for s in data.systems:
        n = min(nframes, s.nframes)
        out = predict(model, s.coord[:n], s.box[:n] if s.pbc else None, s.atype)
        if "energy" in s.labels:
            de.append((out["energy"].reshape(-1) - s.labels["energy"][:n]) / s.natoms)
        if "force" in s.labels:
            df.append((out["force"] - s.labels["force"][:n]).reshape(-1))
    rmse = lambda parts: float(np.sqrt(np.mean(np.concatenate(parts) ** 2))) if parts \
        else float("nan")
    return rmse(de), rmse(df)


def report_error(model, data, what):
    """Log the validation error of ``model`` on ``data``; returns ``(rmse_e, rmse_f)``."""
    e, f = validation_error(model, data)
    log.info("validation error of the %s: energy %.4e eV/atom, force %.4e eV/A", what, e, f)
    return e, f


# --- multi-task fine-tuning -------------------------------------------------------------------
class MultitaskFinetune:
    """How each head of a multi-task input starts from a pretrained model (DeePMD-kit's
    multi-task fine-tuning): a head with ``finetune_head: BRANCH`` starts from that branch and
    its energy bias is recalibrated on its own data (``change-by-statistic``); a head named
    like a pretrained branch continues from it unchanged (as ``--init_model``); any other head
    keeps the pretrained descriptor with a new fitting net (``RANDOM``, ``set-by-statistic``).

    ``specs``: head -> :class:`FinetuneSpec`; ``modes``: head -> bias mode or ``None``."""

    def __init__(self, specs, modes):
        self.specs, self.modes = specs, modes

    @property
    def path(self):
        return next(iter(self.specs.values())).path

    # the protocol of dpkeras.trainer.Trainer(finetune=...)
    def initialize(self, model, train_data, valid_data, ntest, seed):
        initialize_multitask(model, self, train_data, valid_data, ntest, seed)

    def report(self, model, train_data, valid_data):
        report_heads(model, train_data, valid_data, "fine-tuned model")


def complete_multitask_input(raw, pretrained):
    """``--use_pretrain_script`` with a raw multi-task input: an absent or ``{}`` shared
    ``type_map`` / ``descriptor`` / ``type_embedding`` (given directly or through
    ``shared_dict``) is taken from the :class:`Pretrained` model, and so is the absent or ``{}``
    ``fitting_net`` of every head that starts from a branch (``finetune_head``, or a head named
    like a branch). A new head's fitting net must be given."""
    from dpkeras.config import SHARED_MODEL_KEYS

    raw = copy.deepcopy(raw)
    model = raw["model"]
    shared = model.get("shared_dict") if isinstance(model.get("shared_dict"), dict) else {}
    ref = next(iter(pretrained.branches.values()))

    def fill(holder, key, value):
        cur = holder.get(key)
        if value is None:
            return
        if isinstance(cur, str):          # a shared_dict reference
            if shared.get(cur) in (None, {}):
                shared[cur] = copy.deepcopy(value)
        elif cur is None or cur == {}:
            holder[key] = copy.deepcopy(value)

    if isinstance(model.get("fitting_net_dict"), dict):      # TF style
        for key in SHARED_MODEL_KEYS:
            fill(model, key, ref.get(key))
        for h in model["fitting_net_dict"]:
            if h in pretrained.branches:
                fill(model["fitting_net_dict"], h, pretrained.branches[h]["fitting_net"])
        return raw
    for h, sec in (model.get("model_dict") or {}).items():
        if not isinstance(sec, dict):
            continue
        for key in SHARED_MODEL_KEYS:
            fill(sec, key, ref.get(key))
        branch = sec.get("finetune_head") or (h if h in pretrained.branches else None)
        if branch in pretrained.branches:
            fill(sec, "fitting_net", pretrained.branches[branch]["fitting_net"])
    return raw


def multitask_finetune(config, pretrained, use_pretrain_script=False):
    """Rewrite a normalized multi-task ``config`` for fine-tuning from ``pretrained`` (a path,
    zoo name or :class:`Pretrained`); returns ``(config, MultitaskFinetune)``."""
    p = pretrained if isinstance(pretrained, Pretrained) else Pretrained(pretrained)
    config = copy.deepcopy(config)
    specs, modes = {}, {}
    for h, sec in config["model"]["model_dict"].items():
        fh = sec.pop("finetune_head", None)
        branch = fh if fh is not None else (h if h in p.branches else RANDOM)
        try:
            new, name, random_fitting, idx = model_section(sec, p, branch, use_pretrain_script)
        except DPKerasError as exc:
            raise DPKerasError(f"model.model_dict.{h}: {exc}") from None
        new.pop("finetune_head", None)
        config["model"]["model_dict"][h] = new
        specs[h] = FinetuneSpec(p, name, random_fitting, idx)
        modes[h] = "set-by-statistic" if random_fitting else (
            "change-by-statistic" if fh is not None else None)
        if new["fitting_net"]["type"] != "ener":   # tensor heads: no energy bias
            modes[h] = "output-stats" if random_fitting else None
        log.info("head %s: %s", h, "new fitting net (RANDOM)" if random_fitting else
                 f"from pretrained branch {name}" + (", bias recalibrated" if fh else
                                                      ", continued as it is"))
    return config, MultitaskFinetune(specs, modes)


def initialize_multitask(model, plan, train_data, valid_data, ntest, seed):
    """Load every head of a :class:`dpkeras.multitask.MultiTaskModel` from the pretrained
    model as ``plan`` says, recalibrate the biases, and log every energy head's validation
    error (retained heads too, so forgetting is visible)."""
    from dpkeras.change_bias import recalibrate, samples_from_data
    from dpkeras.fitting.stats import set_output_stats

    for h, head in model.heads.items():
        spec, mode = plan.specs[h], plan.modes[h]
        load_weights(head, spec)
        data = valid_data.get(h) or train_data[h]
        energy = head.fitting.fitting_type == "ener"
        if mode == "output-stats":
            set_output_stats(head, train_data[h], model.config["model_dict"][h])
        elif mode is None:
            if energy:
                report_error(head, data, f"pretrained branch {spec.branch} (head {h}) at the "
                             "start")
        else:
            if not spec.random_fitting:
                report_error(head, data, f"head {h} from branch {spec.branch}, before bias "
                             "recalibration")
            recalibrate(head, samples_from_data(train_data[h], ntest, seed), mode)
            report_error(head, data, f"head {h}, after bias recalibration ({mode})")


def report_heads(model, train_data, valid_data, what):
    """Log the validation error of every energy head of a multi-task model."""
    for h, head in model.heads.items():
        if head.fitting.fitting_type == "ener":
            report_error(head, valid_data.get(h) or train_data[h], f"{what} (head {h})")
