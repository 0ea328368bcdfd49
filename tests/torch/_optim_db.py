"""torch's optimizer database, ``optim_db``, read from the installed torch, as test cases.

``torch.testing._internal.common_optimizers`` (shipped in the torch wheel) describes every
torch.optim optimizer once (an ``OptimizerInfo``): its configurations, the inputs it must
refuse with the exception and message, the features it supports (sparse, complex, fused,
foreach, differentiable) and the LR schedulers to try it with. The tests of
``test_optim_db.py`` iterate it: every entry whose optimizer optimlab.torch also has is
covered, so a new optimizer in optimlab.torch is tested by torch's own entry for it.

The module imports ``torch.testing._internal.common_utils``, which imports ``expecttest``
(a test dependency of torch's, not of its wheel): the ``test`` extra installs it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.testing._internal import common_optimizers as db

import optimlab.torch as ot

#: the OptimizerInfos of the optimizers optimlab.torch has, in optim_db's order
INFOS = [info for info in db.optim_db if info.name in ot.OPTIMIZERS]
DEVICE = "cpu"


def ours(info):
    """optimlab.torch's class for an OptimizerInfo."""
    return ot.OPTIMIZERS[info.name]


def theirs(info):
    """torch.optim's class."""
    return info.optim_cls


@dataclass(frozen=True)
class Config:
    """One configuration of an optimizer: optim_db's description and keyword arguments
    (including the global flags ``foreach``, ``fused``, ``differentiable``, as torch's
    ``_get_optim_inputs_including_global_cliquey_kwargs`` adds them)."""

    info: object
    desc: str
    kwargs_: dict

    @property
    def name(self) -> str:
        return self.info.name

    def kwargs(self) -> dict:
        """A fresh copy (a tensor lr must not be shared between two optimizers)."""
        return copy.deepcopy(self.kwargs_)

    @property
    def id(self) -> str:
        return f"{self.name}-{self.desc}".replace(" ", "_")


def configs(info, dtype=torch.float32, skip=()) -> list[Config]:
    """Every CPU configuration of ``info`` with the global flags it supports (``skip``: flags
    left out, e.g. ``("fused",)`` for complex parameters, which torch's fused kernels refuse)."""
    inputs = db._get_optim_inputs_including_global_cliquey_kwargs(DEVICE, dtype, info, skip=skip)
    return [Config(info, i.desc, dict(i.kwargs)) for i in inputs]


def all_configs(dtype=torch.float32, skip=()) -> list[Config]:
    """:func:`configs` of every covered optimizer."""
    return [c for info in INFOS for c in configs(info, dtype, skip)]


@dataclass(frozen=True)
class ErrorCase:
    """An ErrorOptimizerInput of optim_db: ``index`` into ``optim_error_inputs_func``'s list
    (regenerated for each use: the inputs hold parameters)."""

    info: object
    index: int
    desc: str

    def make(self):
        return self.info.optim_error_inputs_func(device=DEVICE, dtype=torch.float32)[self.index]

    @property
    def id(self) -> str:
        return f"{self.info.name}-{self.desc}".replace(" ", "_")


def error_cases() -> list[ErrorCase]:
    """Every CPU error input of every covered optimizer."""
    cases = []
    for info in INFOS:
        if info.optim_error_inputs_func is None:
            continue
        inputs = info.optim_error_inputs_func(device=DEVICE, dtype=torch.float32)
        for index, error_input in enumerate(inputs):
            cases.append(ErrorCase(info, index, error_input.optimizer_error_input.desc))
    return cases


def sparse_configs() -> list[Config]:
    """The configurations torch's sparse test runs (``test_rosenbrock_sparse``): optim_db's,
    without ``differentiable`` and ``fused``, with the keys of ``metadata_for_sparse`` taken
    out (duplicates dropped) and its learning rate put in."""
    cases = []
    for info in INFOS:
        if not info.supports_sparse:
            continue
        updates, _ = info.metadata_for_sparse
        seen = set()
        for c in configs(info, torch.float64, skip=("differentiable", "fused")):
            kwargs = {k: v for k, v in c.kwargs_.items() if k not in updates}
            key = tuple(sorted(kwargs.items()))
            if not kwargs or key in seen:
                continue
            seen.add(key)
            if "lr" in updates:
                kwargs["lr"] = updates["lr"]
            cases.append(Config(info, c.desc, kwargs))
    return cases


def scheduler_cases() -> list[tuple]:
    """(info, index of its ``scheduler_inputs`` entry) of every covered optimizer."""
    return [(info, i) for info in INFOS for i in range(len(info.scheduler_inputs))]
