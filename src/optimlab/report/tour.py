"""``write_tour``: run every experiment of the lecture and write the report folder::

out/index.html        the report (relative links only: opens offline, movable as a folder;
                      equations as MathML, typeset by the browser without JavaScript)
out/figures/*.png     every figure
out/numbers.json      every measured number, by experiment (the same command writes the
                      same file: the determinism check)
out/claims.json       every claim of every chapter, with whether it held on this run
out/colors.json       every legend entry of every figure and its colour
out/timings.json      seconds per experiment (the only file that differs between runs)
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import jinja2

from ..lab import experiments
from ..lab.experiments import Plot
from ..viz import animate_paths, save
from ..viz.style import OPTIMIZER_COLORS
from . import render

TEMPLATES = Path(__file__).parent / "templates"

#: what the tour's words mean, stated once at the top of the page
DEFINITIONS = [
    (
        "Steps to a target",
        "the first step after which the loss stays at or below the target up to the horizon "
        "(a momentary dip does not count); a run that is above the target at its last step "
        "has not reached it, and the tables say so.",
    ),
    (
        "f − f_min",
        "the loss above the surface's minimum, clamped at 0: rounding can put f up to about "
        "1e-15 below f_min, which is shown as 0; on a log axis, values below the floor stated "
        "on the axis are drawn at that floor.",
    ),
    (
        "Diverged",
        "a run whose point left the region |x|, |y| < 1e6 or became non-finite (a data "
        "problem: whose loss became non-finite); only such runs are called diverged.",
    ),
    (
        "Tuned",
        "a learning rate chosen on a log grid by the rule each chapter states; a tuned value "
        "on the edge of its grid widens the grid until it is inside (the verdict flags any "
        "that stays on the edge).",
    ),
    (
        "Ranks",
        "1 is best; optimizers whose results are equal under the stated rule share a rank "
        "(1, 1, 3, ...).",
    ),
]


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item"):  # NumPy scalars
        return _json_value(value.item())
    return value


#: ``optimlab play``'s address (its default host and port)
PLAY_URL = "http://127.0.0.1:8765/"


def _sgd(lr: float, name: str = "SGD") -> str:
    return f"{name},keras,learning_rate={lr:g}"


#: the scene of ``optimlab play`` where each chapter can be touched: (the page's own URL
#: parameters, what it shows)
PLAY_SCENES: dict[str, tuple[list[tuple[str, str]], str]] = {
    "gd_variants": (
        [("scene", "regression"), ("batch", "100"), ("epochs", "10")],
        "the 500-row regression, the batch size as a slider",
    ),
    "reading_graphs": (
        [("scene", "race"), ("surface", "ravine"), ("opt", _sgd(0.018))],
        "one run on the ravine, its loss and gradient norm",
    ),
    "learning_rate": (
        [("scene", "race"), ("surface", "ravine")]
        + [("opt", _sgd(lr)) for lr in (0.005, 0.018, 0.0205)],
        "three learning rates on the ravine",
    ),
    "schedules": (
        [("scene", "race"), ("surface", "rosenbrock"), ("noise", "0.5"), ("opt", _sgd(0.002))]
        + [("opt", _sgd(0.002) + ",schedule=ExponentialDecay;decay_steps=100;decay_rate=0.5")],
        "a decaying learning rate against gradient noise",
    ),
    "convexity": (
        [("scene", "maps"), ("surface", "himmelblau")],
        "the basins of attraction of Himmelblau's four minima",
    ),
    "local_minima": (
        [("scene", "race"), ("surface", "two_well"), ("opt", _sgd(0.01))]
        + [("opt", _sgd(0.01, "Momentum"))],
        "the two wells: plain SGD and momentum",
    ),
    "saddle_points": (
        [("scene", "race"), ("surface", "saddle"), ("anatomy", "1"), ("opt", _sgd(0.01))]
        + [("opt", _sgd(0.01, "Adam"))],
        "a saddle point, with the anatomy of each step",
    ),
    "high_curvature": (
        [("scene", "race"), ("surface", "ravine"), ("opt", _sgd(0.018))]
        + [("opt", _sgd(0.018, "Momentum")), ("opt", _sgd(0.01, "RMSprop"))],
        "the ravine: oscillation across it, progress along it",
    ),
    "ewma": ([("scene", "ewma"), ("beta", "0.9")], "the lecture's temperatures, beta as a slider"),
    "momentum": (
        [("scene", "race"), ("surface", "ravine"), ("opt", _sgd(0.005))]
        + [("opt", _sgd(0.005, "Momentum"))],
        "momentum against plain SGD, beta as a slider",
    ),
    "momentum_quadratic": (
        [("scene", "maps"), ("lb_surface", "ravine"), ("lb_opt", "Momentum")],
        "the (learning rate, beta) map over the theory's convergence region",
    ),
    "nesterov": (
        [("scene", "race"), ("surface", "ravine"), ("anatomy", "1")]
        + [("opt", _sgd(0.01, "Momentum")), ("opt", _sgd(0.01, "NAG"))],
        "momentum and NAG, the look-ahead point drawn",
    ),
    "nag_disadvantage": (
        [("scene", "race"), ("surface", "two_well")]
        + [("opt", _sgd(0.01, "Momentum")), ("opt", _sgd(0.01, "NAG"))],
        "NAG and momentum on the two wells",
    ),
    "keras_code": (
        [("scene", "race"), ("surface", "ravine"), ("opt", _sgd(0.001, "NAG"))],
        "SGD(momentum=0.9, nesterov=True), with its code to copy",
    ),
    "sparse_adagrad": (
        [("scene", "race"), ("surface", "ravine"), ("anatomy", "1")]
        + [("opt", _sgd(0.5, "Adagrad"))],
        "Adagrad's per-coordinate learning rates, step by step",
    ),
    "adagrad_decay": (
        [("scene", "race"), ("surface", "rosenbrock")]
        + [("opt", _sgd(0.5, "Adagrad")), ("opt", _sgd(0.01, "RMSprop"))],
        "Adagrad's falling rate against RMSprop's",
    ),
    "rmsprop": (
        [("scene", "race"), ("surface", "rosenbrock"), ("anatomy", "1")]
        + [("opt", _sgd(0.01, "RMSprop"))],
        "RMSprop's effective learning rates, step by step",
    ),
    "adam": (
        [("scene", "race"), ("surface", "rosenbrock"), ("opt", _sgd(0.02, "Adam"))]
        + [("opt", _sgd(0.001, "Momentum")), ("opt", _sgd(0.001, "RMSprop"))],
        "Adam, momentum and RMSprop on Rosenbrock",
    ),
    "verdict": (
        [("scene", "race"), ("surface", "rosenbrock")]
        + [("opt", f"{n},keras") for n in ("SGD", "Momentum", "NAG", "RMSprop", "Adam")],
        "five optimizers at once, on any surface or a function you type",
    ),
}


def play_link(key: str) -> tuple[str, str] | None:
    """(URL, what it shows) of the ``optimlab play`` scene matching chapter ``key``, or None."""
    if key not in PLAY_SCENES:
        return None
    pairs, text = PLAY_SCENES[key]
    return PLAY_URL + "?" + "&".join(f"{k}={v}" for k, v in pairs), text


def command_of(key: str, quick: bool) -> str:
    """The command that reproduces one chapter as the page shows it."""
    return f"optimlab tour --only {key}" + (" --quick" if quick else "")


def _chapter(key: str, quick: bool, figures_dir: Path, dpi: int) -> dict:
    """Run one experiment and write its figures; returns what the page needs (picklable: the
    figures are files by then), so that chapters can run in worker processes."""
    start = time.perf_counter()
    result = experiments.run(key, quick=quick)
    files = []
    for name, plot in result.figures.items():
        if not isinstance(plot, Plot) or not plot.look_for:
            raise ValueError(f"{key}: figure {name!r} has no 'what to look for' line")
        path = figures_dir / f"{key}-{name}.png"
        save(plot.figure, path, dpi=dpi, layout_rounds=1)  # each figure is saved once
        files.append((name, f"figures/{path.name}", plot.look_for))
    for name, anim in result.animations.items():
        path = figures_dir / f"{key}-{name}.gif"
        animate_paths(anim.surface, anim.paths, path, frames=30 if quick else 60)
        files.append((f"{name} (animation)", f"figures/{path.name}", anim.look_for))
    colors = legend_colors(result)
    colors += [(n, label, "") for n, anim in result.animations.items() for label in anim.paths]
    result.figures, result.animations = {}, {}
    return {
        "result": result,
        "figures": files,
        "colors": colors,
        "seconds": time.perf_counter() - start,
    }


#: the slowest chapters, started first when chapters run in parallel
_SLOW_FIRST = (
    "benchmark",
    "adafactor",
    "muon",
    "verdict",
    "momentum_quadratic",
    "keras_code",
    "saddle_points",
    "high_curvature",
)


def write_tour(
    out_dir,
    keys=None,
    *,
    quick: bool = False,
    progress: bool = True,
    dpi: int = 100,
    workers: int | None = None,
) -> Path:
    """Run the experiments ``keys`` (default: all, in the lecture's order) and write the report
    into ``out_dir``; returns the path of ``index.html``. ``workers``: how many processes run
    chapters side by side (default: up to 2, as many as there are CPUs; 1 runs them here).
    Every chapter is seeded, so the output does not depend on it."""
    keys = list(experiments.EXPERIMENTS if keys is None else keys)
    for key in keys:
        experiments.get(key)  # unknown keys fail before any work
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 600:
        raise ValueError(f"dpi must be an integer in [10, 600], got {dpi!r}")
    if workers is None:
        workers = max(1, min(2, os.cpu_count() or 1, len(keys)))
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1 (or None), got {workers!r}")
    out = Path(out_dir)
    figures_dir = _writable_folder(out) / "figures"
    figures_dir.mkdir(exist_ok=True)

    done: dict[str, dict] = {}
    with _progress(progress, len(keys)) as advance:
        if workers <= 1:
            for key in keys:
                done[key] = _chapter(key, quick, figures_dir, dpi)
                advance(key)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            order = sorted(keys, key=lambda k: (k not in _SLOW_FIRST, keys.index(k)))
            context = multiprocessing.get_context("spawn")
            with (
                _single_threaded_children(),
                ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
            ):
                futures = {pool.submit(_chapter, k, quick, figures_dir, dpi): k for k in order}
                for future in as_completed(futures):
                    done[futures[future]] = future.result()
                    advance(futures[future])
    sections, numbers, claims, timings = [], {}, {}, {}
    for key in keys:
        chapter = done[key]
        result = chapter["result"]
        timings[key] = chapter["seconds"]
        numbers[key] = {k: _json_value(v) for k, v in result.numbers.items()}
        claims[key] = [c.as_json() for c in result.claims]
        sections.append(
            {
                "result": result,
                "figures": chapter["figures"],
                "command": command_of(key, quick),
                "play": play_link(key),
                "held": sum(c.holds for c in result.claims),
            }
        )

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
    )
    env.filters["cell"] = render.cell
    env.filters["math"] = render.math_ml
    env.filters["prose"] = render.prose
    total = sum(len(c) for c in claims.values())
    held = sum(s["held"] for s in sections)
    from ..viz.style import base_name

    used = {base_name(label) for k in keys for _, label, _ in done[k]["colors"]} - {None}
    html = env.get_template("tour.html.j2").render(
        sections=sections,
        quick=quick,
        definitions=DEFINITIONS,
        colors=[(n, c) for n, c in OPTIMIZER_COLORS.items() if n in used],
        claims_total=total,
        claims_held=held,
    )
    written = {name for s in sections for _, name, _ in s["figures"]}
    stale = [*figures_dir.glob("*.png"), *figures_dir.glob("*.gif")]
    for old in stale:  # figures of an earlier tour that no chapter drew now
        if f"figures/{old.name}" not in written:
            old.unlink()
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    (out / "numbers.json").write_text(
        json.dumps(numbers, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out / "claims.json").write_text(json.dumps(claims, indent=1) + "\n", encoding="utf-8")
    colors = {k: [[f, label, c] for f, label, c in done[k]["colors"] if c] for k in keys}
    (out / "colors.json").write_text(json.dumps(colors, indent=1) + "\n", encoding="utf-8")
    (out / "timings.json").write_text(  # wall time: the one output that varies between runs
        json.dumps({k: round(v, 3) for k, v in timings.items()}, indent=1) + "\n",
        encoding="utf-8",
    )
    return index


#: the names a tour writes into its folder: a folder holding anything else is not a tour's
TOUR_FILES = frozenset(
    {"index.html", "numbers.json", "claims.json", "colors.json", "timings.json", "figures"}
)


def foreign_files(out) -> list[str]:
    """The entries of folder ``out`` that no tour writes (an earlier tour's folder, or one
    that is missing or empty, has none): the tour replaces its own files and deletes stale
    figures, so it refuses a folder holding anything else rather than lose it."""
    out = Path(out)
    if not out.is_dir():
        return []
    foreign = sorted(p.name for p in out.iterdir() if p.name not in TOUR_FILES)
    figures = out / "figures"
    if figures.is_dir():
        foreign += sorted(
            f"figures/{p.name}"
            for p in figures.iterdir()
            if not (p.is_file() and p.suffix in (".png", ".gif"))
        )
    return foreign


def _writable_folder(out: Path) -> Path:
    """``out`` as a folder the tour can write into, created if missing, checked before any
    experiment runs (ValueError naming out_dir and why not)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} is a file; the tour writes a folder there")
    foreign = foreign_files(out)
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:3]) + (", ..." if foreign[3:] else "")
        raise ValueError(
            f"out_dir {str(out)!r} holds files a tour does not write ({shown}); choose a new or "
            "empty folder, or one an earlier tour wrote"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"out_dir {str(out)!r} cannot be created: {error.strerror}") from None
    figures = out / "figures"
    if figures.exists() and not figures.is_dir():
        raise ValueError(f"out_dir {str(out)!r} has a file named 'figures' where the tour "
                         "writes its figures")  # fmt: skip
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"out_dir {str(out)!r} is not writable")
    return out


_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "NUMBA_NUM_THREADS")  # fmt: skip


class _single_threaded_children:
    """While open, new processes start with one BLAS/OpenMP/numba thread each (the worker
    processes are the parallelism; threads on top of them only spin), set through the
    environment they inherit; the parent's environment is restored on exit."""

    def __enter__(self):
        self._saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
        os.environ.update({name: "1" for name in _THREAD_VARIABLES})
        return self

    def __exit__(self, *exc):
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        return False


def legend_colors(result) -> list[tuple[str, str, str]]:
    """(figure, label, colour) of every line in every legend of a chapter's figures: what
    the page's claim "one colour per optimizer" is checked against."""
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D

    out = []
    for name, plot in result.figures.items():
        fig = plot.figure
        for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
            if legend is None:
                continue
            for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=False):
                if isinstance(handle, Line2D) and handle.get_linestyle() not in ("None", ""):
                    out.append((name, text.get_text(), to_hex(handle.get_color())))
    return out


class _progress:
    """A rich progress bar over the experiments (or nothing)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda key: None
        from rich.progress import Progress

        self._bar = Progress(transient=False)
        self._bar.__enter__()
        task = self._bar.add_task("lecture tour", total=self.total)

        def advance(key):
            self._bar.update(task, advance=1, description=f"lecture tour: {key}")

        return advance

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.__exit__(*exc)
        return False
