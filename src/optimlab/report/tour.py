"""``write_tour``: run every experiment of the lecture and write the report folder::

out/index.html        the report (relative links only: opens offline, movable as a folder)
out/figures/*.png     every figure
out/numbers.json      every measured number, by experiment (the same command writes the
                      same file: the determinism check)
out/timings.json      seconds per experiment (the only file that differs between runs)
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jinja2

from ..lab import experiments
from ..viz import animate_paths, save

TEMPLATES = Path(__file__).parent / "templates"


def _format(value) -> str:
    """A number as the report prints it: 4 significant digits, integers as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item"):  # NumPy scalars
        return _json_value(value.item())
    return value


def write_tour(
    out_dir, keys=None, *, quick: bool = False, progress: bool = True, dpi: int = 100
) -> Path:
    """Run the experiments ``keys`` (default: all, in the lecture's order) and write the report
    into ``out_dir``; returns the path of ``index.html``."""
    keys = list(experiments.EXPERIMENTS if keys is None else keys)
    for key in keys:
        experiments.get(key)  # unknown keys fail before any work
    out = Path(out_dir)
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)

    sections, numbers, timings = [], {}, {}
    with _progress(progress, len(keys)) as advance:
        for key in keys:
            start = time.perf_counter()
            result = experiments.run(key, quick=quick)
            files = []
            for name, fig in result.figures.items():
                path = figures_dir / f"{key}-{name}.png"
                save(fig, path, dpi=dpi)
                files.append((name, f"figures/{path.name}"))
            for name, (surface, paths) in result.animations.items():
                path = figures_dir / f"{key}-{name}.gif"
                animate_paths(surface, paths, path, frames=30 if quick else 100)
                files.append((f"{name} (animation)", f"figures/{path.name}"))
            timings[key] = time.perf_counter() - start
            numbers[key] = {k: _json_value(v) for k, v in result.numbers.items()}
            sections.append({"result": result, "figures": files, "seconds": timings[key]})
            advance(key)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
    )
    env.filters["number"] = _format
    html = env.get_template("tour.html.j2").render(sections=sections, quick=quick)
    written = {name for s in sections for _, name in s["figures"]}
    stale = [*figures_dir.glob("*.png"), *figures_dir.glob("*.gif")]
    for old in stale:  # figures of an earlier tour that no chapter drew now
        if f"figures/{old.name}" not in written:
            old.unlink()
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    (out / "numbers.json").write_text(
        json.dumps(numbers, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out / "timings.json").write_text(  # wall time: the one output that varies between runs
        json.dumps({k: round(v, 3) for k, v in timings.items()}, indent=1) + "\n",
        encoding="utf-8",
    )
    return index


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
