"""The neighbor list matches a brute-force enumeration of periodic images."""

import itertools

import numpy as np
import pytest

from conftest import WATER
from dpkeras.data.system import DeepmdSystem
from dpkeras.nlist import build_neighbor_list


def brute_force(coord, atype, box, rcut, ntypes):
    """Sorted distances of every neighbor of each atom, per type, over enough images."""
    n = len(coord)
    if box is None:
        shifts = [np.zeros(3)]
    else:
        vol = abs(np.linalg.det(box))
        widths = [vol / np.linalg.norm(np.cross(box[(k + 1) % 3], box[(k + 2) % 3]))
                  for k in range(3)]
        frac = coord @ np.linalg.inv(box)
        coord = (frac - np.floor(frac)) @ box          # wrapped: same distances, fewer images
        m = [int(np.ceil(rcut / w)) + 1 for w in widths]
        shifts = [np.array(s) @ box for s in itertools.product(*[range(-k, k + 1) for k in m])]
    out = [[[] for _ in range(ntypes)] for _ in range(n)]
    for i in range(n):
        for s in shifts:
            d = np.linalg.norm(coord + s - coord[i], axis=1)
            for j in np.where((d < rcut) & (d > 1e-10))[0]:
                out[i][atype[j]].append(d[j])
    return [[sorted(x) for x in row] for row in out]


def ours(coord, atype, box, rcut, sel):
    nl, sh, cnt = build_neighbor_list(coord, atype, box, rcut, sel)
    nl, sh, cnt = nl.numpy(), sh.numpy(), cnt.numpy()
    bounds = np.cumsum([0] + list(sel))
    res = []
    for i in range(len(coord)):
        row = []
        for t in range(len(sel)):
            idx = nl[i, bounds[t]:bounds[t + 1]]
            valid = idx >= 0
            assert np.all(atype[idx[valid]] == t)
            rij = coord[idx[valid]] + (sh[i, bounds[t]:bounds[t + 1]][valid] @ box
                                       if box is not None else 0) - coord[i]
            row.append(list(np.linalg.norm(rij, axis=1)))
        res.append(row)
    return res, cnt


def test_water_periodic_matches_brute_force_and_is_sorted():
    s = DeepmdSystem(WATER[3], ["O", "H"])
    coord = s.coord[0] + np.array([25.0, -13.0, 40.0])  # unwrapped input coordinates
    got, cnt = ours(coord, s.atype, s.box[0], 6.0, [46, 92])
    ref = brute_force(coord, s.atype, s.box[0], 6.0, 2)
    for i in range(0, s.natoms, 17):
        for t in range(2):
            assert np.allclose(got[i][t], ref[i][t]), (i, t)
            assert cnt[i, t] == len(ref[i][t])


@pytest.mark.parametrize("box", [
    np.array([[4.0, 0, 0], [1.5, 3.8, 0], [0.7, -1.1, 4.2]]),    # triclinic, thinner than 2*rcut
    np.array([[2.5, 0, 0], [0, 9.0, 0], [0, 0, 3.1]]),           # several images along x and z
])
def test_small_triclinic_box_matches_brute_force(box):
    rng = np.random.default_rng(0)
    coord = rng.uniform(-3, 8, size=(7, 3))
    atype = np.array([0, 1, 1, 0, 1, 0, 1])
    sel = [200, 300]
    got, cnt = ours(coord, atype, box, 5.0, sel)
    ref = brute_force(coord, atype, box, 5.0, 2)
    for i in range(7):
        for t in range(2):
            assert np.allclose(got[i][t], ref[i][t]), (i, t)
            assert cnt[i, t] == len(ref[i][t])


def test_non_periodic_and_truncation_keeps_the_nearest():
    rng = np.random.default_rng(1)
    coord = rng.uniform(0, 4, size=(12, 3))
    atype = np.array([0, 1] * 6)
    got, cnt = ours(coord, atype, None, 3.0, [2, 3])
    ref = brute_force(coord, atype, None, 3.0, 2)
    for i in range(12):
        for t, k in enumerate([2, 3]):
            assert np.allclose(got[i][t], ref[i][t][:k])
            assert cnt[i, t] == len(ref[i][t])
