"""One experiment per chapter of the lecture, in the lecture's order.

Each experiment is a function ``run_<key>(quick=False) -> Result`` in one of this package's
modules (several chapters may share a module): it computes the chapter's numbers
(seeded, so the same call gives the same numbers) and draws its figures. ``quick`` shrinks grids
and horizons for tests; the tour runs the full versions.

    from optimlab.lab import experiments
    result = experiments.run("ewma")
    result.numbers["V_2 (beta=0.9)"]      # 2.87, the lecture's worked example
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    """A small table of measured numbers: a caption, column names and rows."""

    caption: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Result:
    """What an experiment shows: the chapter's equations, its measured numbers (a flat dict,
    compared across runs for determinism), tables, figures (matplotlib Figures by name),
    animations (paths on a surface, written as GIFs by the report) and a summary in words that
    quotes the numbers."""

    key: str
    title: str
    chapter: str
    summary: str
    equations: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    code: str | None = None
    #: name -> (surface, {label: path}): drawn as a GIF race by the report
    animations: dict[str, Any] = field(default_factory=dict)


# key -> (module, the lecture's chapter heading)
CHAPTERS: dict[str, tuple[str, str]] = {
    "gd_variants": ("data_chapters", "Types of optimizers: batch, stochastic and mini-batch GD"),
    "learning_rate": ("landscapes", "Challenge 1: the learning rate"),
    "schedules": ("data_chapters", "Challenge 2: learning-rate schedules"),
    "per_parameter": ("data_chapters", "Challenge 3: one learning rate for every direction"),
    "convexity": ("landscapes", "Convex vs non-convex optimization"),
    "local_minima": ("landscapes", "Challenge 4: local minima"),
    "saddle_points": ("landscapes", "Challenge 5: saddle points"),
    "high_curvature": ("landscapes", "High curvature"),
    "ewma": ("ewma", "Exponentially weighted moving average"),
    "momentum": ("momentum", "Momentum optimization"),
    "nesterov": ("momentum", "Nesterov accelerated gradient"),
    "keras_code": ("momentum", "Keras code"),
    "sparse_adagrad": ("data_chapters", "How optimizers behave: sparse data and Adagrad"),
    "adagrad_decay": ("adaptive", "Adagrad's disadvantage: a vanishing learning rate"),
    "rmsprop": ("adaptive", "RMSprop"),
    "adam": ("adaptive", "Adam and bias correction"),
    "verdict": ("verdict", "Verdict: which optimizer to use"),
}

EXPERIMENTS = tuple(CHAPTERS)


def get(key: str) -> Callable[..., Result]:
    """The experiment function of ``key`` (ValueError listing the valid keys)."""
    if key not in CHAPTERS:
        raise ValueError(f"unknown experiment {key!r}; valid: {', '.join(EXPERIMENTS)}")
    module_name, _ = CHAPTERS[key]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, f"run_{key}")


def run(key: str, quick: bool = False) -> Result:
    """Run experiment ``key``; ``quick`` for small grids and horizons."""
    result = get(key)(quick=quick)
    result.chapter = CHAPTERS[key][1]
    return result
