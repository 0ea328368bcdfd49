"""Params against hostile keys, values, dtypes, alignments and groups: every refusal is a
ValueError or TypeError (an unknown name also a KeyError) naming the argument and its value;
accepted layouts step like separate arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol

from .registry import HOSTILE, Real
from .world import accepted, refuses, shown

ARRAYS = {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3)}

BAD = [
    ("not a mapping", dict(arrays=[np.ones(2)]), TypeError, ["arrays", "mapping"]),
    ("empty", dict(arrays={}), TypeError, ["arrays", "non-empty"]),
    (
        "keys collide as strings",
        dict(arrays={1: np.ones(2), "1": np.zeros(3)}),
        ValueError,
        ["1", "'1'", "distinct"],
    ),
    ("string values", dict(arrays={"a": np.array(["1.5"])}), TypeError, ["arrays['a']", "<U3"]),
    (
        "complex values",
        dict(arrays={"a": np.array([1 + 2j])}),
        TypeError,
        ["arrays['a']", "complex"],
    ),
    ("bool values", dict(arrays={"a": np.array([True])}), TypeError, ["arrays['a']", "bool"]),
    ("object values", dict(arrays={"a": [1.0, None]}), TypeError, ["arrays['a']", "object"]),
    (
        "ragged values",
        dict(arrays={"a": [[1.0], [1.0, 2.0]]}),
        TypeError,
        ["arrays['a']", "ragged"],
    ),
    ("huge int values", dict(arrays={"a": [10**400]}), TypeError, ["arrays['a']"]),
    (
        "float64 beyond float32",
        dict(arrays={"a": np.array([1.0, 1e300])}, dtype=np.float32),
        ValueError,
        ["arrays['a']", "1e+300", "float32"],
    ),
    ("dtype int", dict(dtype=np.int32), TypeError, ["dtype", "float32 or float64", "int32"]),
    ("dtype float16", dict(dtype=np.float16), TypeError, ["dtype", "float16"]),
    ("dtype junk", dict(dtype="abc"), TypeError, ["dtype", "'abc'"]),
    ("dtype object", dict(dtype=object), TypeError, ["dtype", "object"]),
    ("align 48", dict(align=48), ValueError, ["align", "power of two", "48"]),
    ("align 4 for float64", dict(align=4), ValueError, ["align", ">= 8", "4"]),
    ("align True", dict(align=True), ValueError, ["align", "True"]),
    ("align str", dict(align="64"), ValueError, ["align", "'64'"]),
    ("groups a list", dict(groups=[{"params": ["b"]}]), TypeError, ["groups", "mapping"]),
    ("group not a mapping", dict(groups={"g": ["b"]}), TypeError, ["group 'g'", "'params'"]),
    (
        "group without params",
        dict(groups={"g": {"lr_scale": 1.0}}),
        TypeError,
        ["group 'g'", "'params'"],
    ),
    (
        "unknown option",
        dict(groups={"g": {"params": ["b"], "lr": 1}}),
        TypeError,
        ["group 'g'", "'lr'", "lr_scale"],
    ),
    (
        "params a string",
        dict(groups={"g": {"params": "wb"}}),
        TypeError,
        ["groups['g']['params']", "'wb'"],
    ),
    (
        "params a number",
        dict(groups={"g": {"params": 3}}),
        TypeError,
        ["groups['g']['params']", "3"],
    ),
    (
        "unknown name",
        dict(groups={"g": {"params": ["x"]}}),
        ValueError,
        ["group 'g'", "'x'", "not a parameter"],
    ),
    (
        "a name twice",
        dict(groups={"g": {"params": ["b", "b"]}}),
        ValueError,
        ["group 'g'", "'b' twice"],
    ),
    (
        "two groups",
        dict(groups={"g": {"params": ["b"]}, "h": {"params": ["b"]}}),
        ValueError,
        ["'b'", "two groups", "'g'", "'h'"],
    ),
    (
        "the default group",
        dict(groups={"default": {"params": ["b"], "lr_scale": 0.5}}),
        ValueError,
        ["'default'", "no group"],
    ),
    (
        "group names collide",
        dict(groups={1: {"params": ["b"]}, "1": {"params": ["w"]}}),
        ValueError,
        ["'1'", "distinct"],
    ),
]


@pytest.mark.parametrize("label,kwargs,exc,says", BAD, ids=[b[0] for b in BAD])
def test_bad_params_are_refused(label, kwargs, exc, says):
    kwargs = {"arrays": ARRAYS, **kwargs}
    refuses(lambda: ol.Params(kwargs.pop("arrays"), **kwargs), exc=exc, says=tuple(says))


def test_an_unknown_name_is_a_key_error_too():
    with pytest.raises(KeyError, match="not a parameter"):
        ol.Params(ARRAYS, groups={"g": {"params": ["x"]}})
    P = ol.Params(ARRAYS)
    with pytest.raises(KeyError, match="no parameter named 'x'"):
        P["x"]
    accepted()


@pytest.mark.parametrize("option", ["lr_scale", "weight_decay"])
@settings(max_examples=80)
@given(value=HOSTILE, dtype=st.sampled_from([np.float32, np.float64]))
def test_group_options(option, value, dtype):
    """A group's lr_scale and weight_decay: floats >= 0 that the dtype holds (None: unset)."""
    verdict, expected = Real(0.0, optional=True).verdict(value)
    if verdict == "accept" and expected is not None and expected > float(np.finfo(dtype).max):
        verdict, expected = "refuse", ValueError
    groups = {"g": {"params": ["b"], option: value}}
    if verdict == "refuse":
        refuses(
            lambda: ol.Params(ARRAYS, dtype=dtype, groups=groups),
            exc=expected,
            says=(f"groups['g'][{option!r}]", shown(value)),
        )
        return
    P = ol.Params(ARRAYS, dtype=dtype, groups=groups)
    group = next(g for g in P.groups if g.name == "g")
    assert getattr(group, option) == (
        expected if expected is not None else (1.0 if option == "lr_scale" else None)
    )
    accepted()


@settings(max_examples=40)
@given(
    keys=st.lists(
        st.one_of(st.text(max_size=3), st.integers(-3, 3)), min_size=1, max_size=5, unique=True
    )
)
def test_keys_are_strings_and_none_is_dropped(keys):
    arrays = {k: np.full(2, float(i)) for i, k in enumerate(keys)}
    names = [str(k) for k in keys]
    if len(set(names)) < len(names):
        refuses(lambda: ol.Params(arrays), exc=ValueError, says=("distinct",))
        return
    P = ol.Params(arrays)
    assert list(P) == names
    for i, name in enumerate(names):
        np.testing.assert_array_equal(P[name], float(i))
    accepted()


def test_the_layout_cannot_alias():
    """Every group is its own range; no two ranges overlap (a duplicate 'default' group used
    to give two overlapping ranges, and the optimizer updated the shared memory twice)."""
    P = ol.Params(
        {"a": np.ones(3), "b": np.ones(5), "c": np.ones(2)},
        groups={"g": {"params": ["b"]}, "h": {"params": ["c"], "lr_scale": 0.5}},
    )
    ranges = sorted((g.offset, g.offset + g.length) for g in P.groups)
    assert all(end <= start for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False))
    opt = ol.SGD(1.0)
    P.grad[...] = 1.0
    opt.step(P)
    np.testing.assert_array_equal(P["a"], 0.0)
    np.testing.assert_array_equal(P["b"], 0.0)
    np.testing.assert_array_equal(P["c"], 0.5)
    accepted()


def test_empty_group_and_zero_size_arrays():
    P = ol.Params(
        {"a": np.ones(3), "z": np.zeros(0), "s": np.array(1.0)},
        groups={"empty": {"params": []}, "g": {"params": ["z"]}},
    )
    opt = ol.Adam(0.1, clipnorm=1.0)
    P.grads["a"][...] = 1.0
    P.grads["s"][...] = 1.0
    for _ in range(3):
        opt.step(P)
    assert np.isfinite(P.data).all() and P["z"].shape == (0,)
    accepted()
