"""Compare davg/dstd in model.dp with statistics recomputed over ALL frames of data_0..2,
(a) counting padded neighbour slots as zeros (TF's rule), (b) counting only real neighbours.
usage: python check_stats.py DIR   (DIR holds model.dp; data from $WATER_DATA or the repo)"""
import json, sys, glob, os
import h5py, numpy as np
d = sys.argv[1]
with h5py.File(d + "/model.dp") as f:
    t = json.loads(f.attrs["json"])["model"]["descriptor"]
    davg = f[t["@variables"]["davg"]][()]; dstd = f[t["@variables"]["dstd"]][()]
sel, rc, rs = t["sel"], t["rcut"], t["rcut_smth"]
print(t["type"], "davg shape", davg.shape, "unique per centre type:",
      [np.unique(davg[c], axis=0).round(6).tolist() for c in range(2)])
print("   dstd unique per centre type:", [np.unique(dstd[c], axis=0).round(6).tolist() for c in range(2)])
def sw(r):
    u = np.clip((r - rs) / (rc - rs), 0, 1); return u**3 * (-6*u**2 + 15*u - 10) + 1
acc = {c: dict(sr=0., sr2=0., sa=0., sa2=0., nreal=0, nslot=0) for c in range(2)}
DATA = os.environ.get("WATER_DATA", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../dpkeras/examples/data/water"))
for sysd in sorted(glob.glob(DATA + "/data_[012]")):
    at = np.loadtxt(sysd + "/type.raw", dtype=int)
    C = np.load(sysd + "/set.000/coord.npy"); B = np.load(sysd + "/set.000/box.npy")
    for k in range(0, len(C), 4):
        x = C[k].reshape(-1, 3); b = B[k].reshape(3, 3)
        dif = x[None] - x[:, None]; fr = dif @ np.linalg.inv(b); dif = (fr - np.round(fr)) @ b
        r = np.linalg.norm(dif, axis=-1); np.fill_diagonal(r, np.inf)
        m = r < rc; rr = np.where(m, r, 1.0); s = sw(rr) * m
        R0 = s / rr; R1 = (s / rr**2)[..., None] * dif
        for c in range(2):
            ii = at == c
            a = acc[c]; a["sr"] += R0[ii].sum(); a["sr2"] += (R0[ii]**2).sum()
            a["sa"] += R1[ii].sum() / 3; a["sa2"] += (R1[ii]**2).sum() / 3
            a["nreal"] += m[ii].sum(); a["nslot"] += ii.sum() * sum(sel)
for c in range(2):
    a = acc[c]
    for lab, n in (("padded counted", a["nslot"]), ("real only", a["nreal"])):
        mu = a["sr"] / n; sd = np.sqrt(a["sr2"] / n - mu**2); sda = np.sqrt(a["sa2"] / n - (a["sa"] / n)**2)
        print(f"   centre {c} {lab:15s}: avg_r {mu:.6f} std_r {sd:.6f} std_a {sda:.6f}")
