"""Comparisons shared by the optimlab.torch tests: parameters and optimizer state dicts."""

from __future__ import annotations

import torch


def max_diff(a, b) -> float:
    """max |x - y| over two equally long lists of tensors."""
    return max(float((x.detach() - y.detach()).abs().max()) for x, y in zip(a, b, strict=True))


def _real(t):
    return torch.view_as_real(t) if t.is_complex() else t


def assert_same_state(ours: dict, theirs: dict, tol: float, any_dtype=()) -> None:
    """Two state dicts: the same structure (parameter indices and state keys in order, dtypes,
    shapes, equal param_groups), every value within ``tol``. ``any_dtype``: keys whose dtype
    may differ."""
    assert list(ours["state"]) == list(theirs["state"])
    for index, state in theirs["state"].items():
        mine = ours["state"][index]
        assert list(mine) == list(state), index
        for key, value in state.items():
            assert mine[key].shape == value.shape, (index, key)
            assert key in any_dtype or mine[key].dtype == value.dtype, (index, key)
            diff = float((_real(mine[key]).double() - _real(value).double()).abs().max())
            assert diff <= tol, (index, key, diff)
    assert ours["param_groups"] == theirs["param_groups"]
