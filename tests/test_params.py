"""Params: one aligned flat buffer with named views, and the optimizer's step over it."""

from __future__ import annotations

import numpy as np
import pytest

import optimlab as ol

ARRAYS = {"w": np.arange(15.0).reshape(5, 3), "b": np.ones(3), "s": np.array(2.0)}


def test_views_share_the_flat_buffers_and_keep_shapes():
    p = ol.Params(ARRAYS, dtype=np.float32)
    assert list(p) == ["w", "b", "s"] and p.size == 19 and p.dtype == np.float32
    for name, value in ARRAYS.items():
        assert p[name].shape == value.shape and np.shares_memory(p[name], p.data)
        np.testing.assert_array_equal(p[name], value.astype(np.float32))
        assert np.shares_memory(p.grads[name], p.grad)
    p["w"][0, 0] = 42.0
    assert p.data[p.segments[0].offset] == 42.0
    p.grads["b"][...] = 3.0
    p.zero_grad()
    assert not p.grad.any()


def test_every_segment_starts_on_a_cache_line():
    p = ol.Params(ARRAYS, dtype=np.float64, align=64)
    assert p.data.ctypes.data % 64 == 0 and p.grad.ctypes.data % 64 == 0
    for seg in p.segments:
        assert (seg.offset * 8) % 64 == 0


def test_groups_are_contiguous_ranges_with_their_options():
    p = ol.Params(ARRAYS, groups={"no_decay": {"params": ["b", "s"], "weight_decay": 0.0}})
    names = [g.name for g in p.groups]
    assert names == ["default", "no_decay"]
    default, no_decay = p.groups
    assert no_decay.weight_decay == 0.0 and no_decay.lr_scale == 1.0
    assert default.offset + default.length <= no_decay.offset
    members = [s for s in p.segments if s.group == "no_decay"]
    assert {s.name for s in members} == {"b", "s"}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"arrays": {}}, TypeError, "non-empty mapping"),
        ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
        ({"align": 48}, ValueError, "align must be a power of two"),
        ({"groups": {"g": {"params": ["nope"]}}}, KeyError, "not a parameter"),
        ({"groups": {"g": {"params": ["b"], "lr": 1}}}, TypeError, "unknown option"),
        ({"groups": {"g": {"params": ["b"], "lr_scale": -1}}}, ValueError, "lr_scale"),
        ({"groups": {"g": {"params": ["b"]}, "h": {"params": ["b"]}}}, ValueError, "two groups"),
    ],
)
def test_bad_input_is_refused(kwargs, error, match):
    kwargs = {"arrays": ARRAYS, **kwargs}
    with pytest.raises(error, match=match):
        ol.Params(kwargs.pop("arrays"), **kwargs)


@pytest.mark.parametrize("engine", ["fused", "reference"])
@pytest.mark.parametrize(
    "name", ["SGD", "Adam", "AdamW", "Nadam", "RMSprop", "Lion", "RAdam", "Rprop", "Ftrl", "ASGD"]
)
def test_step_equals_separate_optimizers_per_group(name, engine):
    groups = {"slow": {"params": ["b"], "lr_scale": 0.5, "weight_decay": 0.0}}
    params = ol.Params(ARRAYS, dtype=np.float32, groups=groups)
    kwargs = {"learning_rate": 0.01, "weight_decay": 0.1}
    if name == "SGD":
        kwargs["momentum"] = 0.9
    opt = ol.get(name, engine=engine, **kwargs)
    separate = {k: v.astype(np.float32) for k, v in ARRAYS.items()}
    main = ol.get(name, **kwargs)
    slow = ol.get(name, **dict(kwargs, learning_rate=0.005, weight_decay=0.0))
    rng = np.random.default_rng(0)
    for _ in range(25):
        grads = {k: rng.standard_normal(np.shape(v)).astype(np.float32) for k, v in ARRAYS.items()}
        for k, g in grads.items():
            params.grads[k][...] = g
        opt.step(params)
        main.apply_gradients([(grads["w"], separate["w"]), (grads["s"], separate["s"])])
        slow.apply_gradients([(grads["b"], separate["b"])])
    for k in ARRAYS:
        np.testing.assert_array_equal(params[k], separate[k])
    padding = np.ones(params.data.size, bool)
    for seg in params.segments:
        padding[seg.offset : seg.offset + seg.size] = False
    assert not params.data[padding].any()  # the gaps stay zero


def test_step_takes_params_and_only_its_own():
    opt = ol.Adam()
    with pytest.raises(TypeError, match="step\\(\\) takes an optimlab.Params"):
        opt.step([np.zeros(3)])
    opt.step(ol.Params(ARRAYS))
    with pytest.raises(ValueError, match="built for other parameters"):
        opt.step(ol.Params(ARRAYS))
