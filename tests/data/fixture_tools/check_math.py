#!/usr/bin/env python3
"""Independent numpy re-implementation of the se_e2_r / se_e3 descriptor + ener fitting,
reading weights from model.dp (h5py only), compared with reference.npz (DeePMD-kit TF).
Validates the "Math" section of README.md.   usage: python check_math.py DIR
"""
import json
import sys
from pathlib import Path

import h5py
import numpy as np

d = Path(sys.argv[1])


def load(fn):
    with h5py.File(fn, "r") as f:
        tree = json.loads(f.attrs["json"])

        def walk(x, inv=False):
            if isinstance(x, dict):
                return {k: walk(v, inv or k == "@variables") for k, v in x.items()}
            if isinstance(x, list):
                return [walk(v, inv) for v in x]
            if inv and isinstance(x, str):
                return f[x][()]
            return x

        return walk(tree)


m = load(d / "model.dp")["model"]
ds, ft = m["descriptor"], m["fitting"]
ref = np.load(d / "reference.npz")
nt = 2
sel = ds["sel"]
rc, rs = ds["rcut"], ds["rcut_smth"]
davg, dstd = ds["@variables"]["davg"], ds["@variables"]["dstd"]


def emb(net, x):  # TF embedding_net rule (equal -> x+h, double -> [x,x]+h)
    for L in net["layers"]:
        w, b, idt = L["@variables"]["w"], L["@variables"]["b"], L["@variables"]["idt"]
        h = np.tanh(x @ w + b)
        if idt is not None:
            h = h * idt
        if w.shape[1] == w.shape[0]:
            x = x + h
        elif w.shape[1] == 2 * w.shape[0]:
            x = np.concatenate([x, x], -1) + h
        else:
            x = h
    return x


def fit(net, x):  # TF fitting rule: residual only for k>=1 with equal widths
    L = net["layers"]
    for k, Lk in enumerate(L[:-1]):
        w, b, idt = Lk["@variables"]["w"], Lk["@variables"]["b"], Lk["@variables"]["idt"]
        h = np.tanh(x @ w + b)
        if k >= 1 and w.shape[0] == w.shape[1]:
            x = x + (h * idt if idt is not None else h)
        else:
            x = h
    return x @ L[-1]["@variables"]["w"] + L[-1]["@variables"]["b"]


def sw(r):
    u = np.clip((r - rs) / (rc - rs), 0, 1)
    return u**3 * (-6 * u**2 + 15 * u - 10) + 1


def envmat(coord, box, atype):
    """padded neighbour list per type block, sorted by distance; returns R (nat,nnei,4) unnormalised + mask"""
    nat = len(atype)
    dif = coord[None, :, :] - coord[:, None, :]  # r_j - r_i
    if box is not None:
        B = box.reshape(3, 3)
        frac = dif @ np.linalg.inv(B)
        dif = (frac - np.round(frac)) @ B  # minimum image (rcut < half box)
    r = np.linalg.norm(dif, axis=-1)
    np.fill_diagonal(r, np.inf)
    R = np.zeros((nat, sum(sel), 4))
    mask = np.zeros((nat, sum(sel)), bool)
    for i in range(nat):
        off = 0
        for t in range(nt):
            js = np.where((atype == t) & (r[i] < rc))[0]
            js = js[np.argsort(r[i, js], kind="stable")][: sel[t]]
            rr = r[i, js]
            s = sw(rr)
            R[i, off:off + len(js), 0] = s / rr
            R[i, off:off + len(js), 1:] = (s / rr**2)[:, None] * dif[i, js]
            mask[i, off:off + len(js)] = True
            off += sel[t]
    return R, mask


def descriptor(coord, box, atype):
    R, mask = envmat(coord, box, atype)
    nat = len(atype)
    if ds["type"] == "se_r":
        Rn = (R[..., :1] - davg[atype]) / dstd[atype]  # padded slots -> -davg/dstd
        nets = ds["embeddings"]["networks"]
        out = np.zeros((nat, ds["neuron"][-1]))
        off = 0
        for t in range(nt):
            blk = Rn[:, off:off + sel[t], :]
            for c in range(nt):
                ii = atype == c
                net = nets[c + nt * t] if ds["type_one_side"] is False else nets[t]
                out[ii] += emb(net, blk[ii]).sum(1)
            off += sel[t]
        return out / sum(sel) / 5.0
    else:  # se_e3
        Rn = (R - davg[atype]) / dstd[atype]
        nets = ds["embeddings"]["networks"]
        out = np.zeros((nat, ds["neuron"][-1]))
        sec = np.cumsum([0] + sel)
        for ti in range(nt):
            for tj in range(ti, nt):
                ri = Rn[:, sec[ti]:sec[ti + 1], 1:]
                rj = Rn[:, sec[tj]:sec[tj + 1], 1:]
                env = np.einsum("ajm,akm->ajk", ri, rj)
                g = emb(nets[ti + nt * tj], env[..., None])
                out += np.einsum("ajk,ajkm->am", env, g) / sel[ti] / sel[tj]
        return out


def energy(D, atype):
    bias = ft["@variables"]["bias_atom_e"].reshape(-1)
    ob = m["@variables"]["out_bias"].reshape(-1)
    ae = np.zeros(len(atype))
    for t in range(nt):
        ii = atype == t
        ae[ii] = fit(ft["nets"]["networks"][t], D[ii])[:, 0] + bias[t] + ob[t]
    return ae


atype = ref["atype"]
for tag, nf in (("", 4), ("nopbc_", 2)):
    errs_d, errs_e = [], []
    for k in range(nf):
        coord = ref[tag + "coord"][k].reshape(-1, 3)
        box = ref["box"][k] if tag == "" else None
        D = descriptor(coord, box, atype)
        ae = energy(D, atype)
        if tag + "descriptor" in ref.files:
            errs_d.append(np.abs(D - ref[tag + "descriptor"][k]).max())
        errs_e.append(np.abs(ae - ref[tag + "atom_energy"][k]).max())
    print(f"[{tag or 'pbc_'}] numpy re-implementation vs DeePMD-kit: max|dD| = {max(errs_d):.2e}, "
          f"max|d atom_energy| = {max(errs_e):.2e} eV")
