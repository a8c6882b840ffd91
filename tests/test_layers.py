"""Every descriptor and fitting layer at a tiny size through :func:`layer_test.run_layer_test`
(config round trip, ``.keras`` save/load, equal outputs)."""

import numpy as np
import pytest

from dpkeras.descriptor import (DescrptHybrid, DescrptSeA, DescrptSeAtten, DescrptSeAttenV2,
                                DescrptSeR, DescrptSeT)
from dpkeras.fitting.ener import EnerFitting
from dpkeras.fitting.tensor import DipoleFitting, PolarFitting
from layer_test import run_layer_test

NTYPES, SEL = 2, [3, 5]
ATYPE = np.array([[0, 0, 1, 1, 1]], np.int32)


def _neighbors(nnei, seed=0):
    """``rij [1, 5, nnei, 3]`` within 3 A and a mask with the last slot of each atom empty."""
    rng = np.random.default_rng(seed)
    rij = rng.uniform(-1.8, 1.8, (1, ATYPE.shape[1], nnei, 3))
    mask = np.ones((1, ATYPE.shape[1], nnei), bool)
    mask[:, :, -1] = False
    return rij, mask


SMALL = dict(ntypes=NTYPES, rcut=3.5, rcut_smth=0.5, neuron=[4, 6], seed=1)
SE_KINDS = [(DescrptSeA, dict(SMALL, sel=SEL, axis_neuron=2), 12),
            (DescrptSeA, dict(SMALL, sel=SEL, axis_neuron=2, type_one_side=True,
                              exclude_types=[[0, 1]]), 12),
            (DescrptSeR, dict(SMALL, sel=SEL), 6),
            (DescrptSeT, dict(SMALL, sel=SEL), 6),
            (DescrptHybrid, dict(ntypes=NTYPES, list=[
                dict(type="se_e2_a", rcut=3.5, rcut_smth=0.5, sel=SEL, neuron=[4, 6],
                     axis_neuron=2, seed=1),
                dict(type="se_e2_r", rcut=3.0, rcut_smth=0.5, sel=[2, 4], neuron=[4, 5],
                     seed=2)]), 17)]


@pytest.mark.parametrize("cls,kwargs,dim", SE_KINDS,
                         ids=["se_e2_a", "se_e2_a_one_side", "se_e2_r", "se_e3", "hybrid"])
def test_per_type_descriptor_layer_round_trips(cls, kwargs, dim, tmp_path):
    rij, mask = _neighbors(sum(SEL))
    layer, _ = run_layer_test(cls, kwargs, [rij, mask, ATYPE], tmp_path,
                              expected_shape=(1, 5, dim))
    assert layer.get_dim_out() == dim and layer.get_nnei() == sum(SEL)


@pytest.mark.parametrize("cls,extra", [(DescrptSeAtten, {}),
                                       (DescrptSeAtten, {"tebd_input_mode": "strip"}),
                                       (DescrptSeAttenV2, {"tebd_input_mode": "strip",
                                                           "smooth_type_embedding": True})],
                         ids=["se_atten", "se_atten_strip", "se_atten_v2"])
def test_attention_descriptor_layer_round_trips(cls, extra, tmp_path):
    nnei = 6
    rij, mask = _neighbors(nnei, seed=1)
    nei_type = np.where(mask, np.random.default_rng(2).integers(0, NTYPES, mask.shape),
                        NTYPES).astype(np.int32)
    kwargs = dict(SMALL, sel=nnei, axis_neuron=2, attn=4, attn_layer=1, **extra)
    layer, _ = run_layer_test(cls, kwargs, [rij, mask, ATYPE, None, nei_type], tmp_path,
                              expected_shape=(1, 5, 12))
    assert layer.mixed_types() and layer.get_dim_tebd() == 8


@pytest.mark.parametrize("kwargs", [{}, {"numb_fparam": 2, "numb_aparam": 1}],
                         ids=["plain", "fparam_aparam"])
def test_ener_fitting_layer_round_trips(kwargs, tmp_path):
    rng = np.random.default_rng(3)
    d = rng.normal(size=(1, 5, 7))
    extra = ([rng.normal(size=(1, 2)), rng.normal(size=(1, 5, 1))] if kwargs else [])
    inputs = [d, ATYPE, None, None] + extra
    run_layer_test(EnerFitting, dict(ntypes=NTYPES, dim_descrpt=7, neuron=[5, 5], seed=4,
                                     **kwargs), inputs, tmp_path, expected_shape=(1, 5))


@pytest.mark.parametrize("cls,size", [(DipoleFitting, 3), (PolarFitting, 9)])
def test_tensor_fitting_layer_round_trips(cls, size, tmp_path):
    rng = np.random.default_rng(5)
    d, rot = rng.normal(size=(1, 5, 8)), rng.normal(size=(1, 5, 4, 3))
    run_layer_test(cls, dict(ntypes=NTYPES, dim_descrpt=8, embedding_width=4, neuron=[5],
                             sel_type=[1], seed=6), [d, rot, ATYPE], tmp_path,
                   expected_shape=(1, 5, size))
