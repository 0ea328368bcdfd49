"""One experiment per chapter of the lecture, in the lecture's order.

Each experiment is a function ``run_<key>(quick=False) -> Result`` in one of this package's
modules (several chapters may share a module): it computes the chapter's numbers (seeded, so
the same call gives the same numbers), draws its figures, writes its text from those numbers
and states its claims as checks (:mod:`.claims`) that the test suite runs. ``quick`` shrinks
grids and horizons for the tests; the tour runs the full versions.

    from optimlab.lab import experiments
    result = experiments.run("ewma")
    result.numbers["V_2 (beta=0.9, theta_2=17)"]      # 2.87, the lecture's worked example
    all(c.holds for c in result.claims)              # every claim of the chapter checked
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .claims import Claim


@dataclass
class Table:
    """A small table of measured numbers: a caption, column names and rows, and a ``note``
    (how to read it: a definition, a floor). Every row must have one cell per column: a table
    whose rows and header disagree cannot be built (ValueError naming the row), and the rows
    are stored as tuples, so a checked table cannot grow a cell afterwards."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

    def __post_init__(self):
        self.columns = tuple(self.columns)
        self.rows = tuple(tuple(row) for row in self.rows)  # frozen once checked
        if not self.columns:
            raise ValueError(f"table {self.caption!r}: columns must name at least one column")
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.caption!r}: row {i} has {len(row)} cells but the header has "
                    f"{len(self.columns)} ({', '.join(map(str, self.columns))}): {row!r}"
                )


@dataclass
class Plot:
    """A figure and the one line under it that says what to look for."""

    figure: Any
    look_for: str


@dataclass
class Animation:
    """Paths on a surface raced as a GIF by the report, and what to look for in it."""

    surface: Any
    paths: dict
    look_for: str


@dataclass
class Result:
    """What an experiment shows: the chapter's equations (LaTeX, typeset as MathML by the
    report), its measured numbers (a flat dict, compared across runs for determinism), tables,
    figures (:class:`Plot` by name), animations, the text in words that quotes the numbers
    (paragraphs separated by blank lines, inline math between ``$`` signs), the settings it ran
    with, and its claims as checks."""

    key: str
    title: str
    chapter: str
    summary: str
    equations: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: dict[str, Plot] = field(default_factory=dict)
    code: str | None = None
    animations: dict[str, Animation] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


# key -> (module, the lecture's chapter heading)
CHAPTERS: dict[str, tuple[str, str]] = {
    "network_speed": ("network", "Introduction: how fast a network trains"),
    "reading_graphs": ("landscapes", "Understanding graphs"),
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
    "momentum_quadratic": ("quadratic", "Beyond the lecture: why momentum works"),
    "nesterov": ("momentum", "Nesterov accelerated gradient"),
    "nag_disadvantage": ("momentum", "NAG's disadvantage"),
    "keras_code": ("momentum", "Keras code"),
    "sparse_adagrad": ("data_chapters", "How optimizers behave: sparse data and Adagrad"),
    "adagrad_square": ("adaptive", "Adagrad: why the square"),
    "adagrad_decay": ("adaptive", "Adagrad's disadvantage: a vanishing learning rate"),
    "rmsprop": ("adaptive", "RMSprop"),
    "adam": ("adaptive", "Adam and bias correction"),
    "verdict": ("verdict", "Verdict: which optimizer to use"),
    "muon": ("beyond", "Beyond the lecture: Muon"),
    "adafactor": ("beyond", "Beyond the lecture: Adafactor"),
    "schedule_free": ("beyond_training", "Beyond the lecture: Schedule-Free AdamW"),
    "lbfgs": ("beyond_training", "Beyond the lecture: L-BFGS"),
    "benchmark": ("benchmark", "Beyond the lecture: the verdict re-run"),
    "porting": ("porting", "Beyond the lecture: porting between frameworks"),
    "quantized_state": ("quantized_state", "Beyond the lecture: what 8 bits do to Adam's state"),
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
    """Run experiment ``key``; ``quick`` for small grids and horizons. BLAS runs on one
    thread meanwhile: the small matrix products of the lab are faster so, and their sums are
    taken in one order whatever the machine's core count."""
    function = get(key)
    with _one_blas_thread():
        result = function(quick=quick)
    result.chapter = CHAPTERS[key][1]
    return result


def _one_blas_thread():
    """A context that limits BLAS to one thread (threadpoolctl, a scikit-learn dependency)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
