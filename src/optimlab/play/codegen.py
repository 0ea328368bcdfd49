"""The "copy code" snippets: optimlab Python that reproduces what the page shows.

Every number is written with ``repr`` (the shortest string that reads back as the same
float), so the snippet's runs equal the API's bit for bit (a test runs it in a subprocess).
"""

from __future__ import annotations

__all__ = ["optimizer_code", "surface_code", "trajectories_code"]


def _call(function: str, arguments: dict) -> str:
    inner = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return f"{function}({inner})"


def optimizer_code(spec) -> str:
    """``ol.Adam(learning_rate=0.01, preset='torch', ...)`` for an OptimizerSpec (with its
    schedule as ``ol.schedules.Name(...)``)."""
    if spec.schedule is None:
        lr = repr(spec.learning_rate)
    else:
        from .catalog import SCHEDULES

        name, arguments = spec.schedule
        rate = SCHEDULES[name].rate_argument
        lr = _call(f"ol.schedules.{name}", {rate: spec.learning_rate, **arguments})
    parts = [f"learning_rate={lr}", f"preset={spec.preset!r}"]
    parts += [f"{k}={v!r}" for k, v in spec.kwargs.items()]
    return f"ol.{spec.base}({', '.join(parts)})"


def surface_code(source: dict) -> str:
    """The line that builds the request's surface as ``surface``."""
    domain = source.get("domain")
    if "surface" in source:
        line = f"surface = surfaces.get({source['surface']!r})"
        if domain is not None:  # the plotting box only: f and its gradient are unchanged
            line += f"  # domain {list(map(list, domain))!r} on the page"
        return "from optimlab.lab import surfaces\n" + line
    extra = "" if domain is None else f", domain={tuple(map(tuple, domain))!r}"
    return (
        "from optimlab.play.expression import parse_surface\n"
        f"surface = parse_surface({source['expression']!r}{extra})"
    )


_RUN = '''

def run(optimizer, start={start!r}, steps={steps!r}, gradient_noise={noise!r}, seed={seed!r}):
    """The path p_0..p_steps: p_k is the point after k updates of apply_gradients."""
    noise = gradient_noise * np.random.default_rng(seed).standard_normal((steps, 2))
    p = np.array(start, dtype=np.float64)
    path = [p.copy()]
    for t in range(steps):
        g = surface.gradient(p){plus_noise}
        if not np.isfinite(g).all():
            break  # diverged: the page freezes the run at its last point
        before = p.copy()
        optimizer.apply_gradients([(g, p)])
        if not np.abs(p).max() <= 1e6:  # left the region |x|, |y| <= 1e6: diverged
            p[...] = before
            break
        path.append(p.copy())
    return np.array(path)

'''


def trajectories_code(source: dict, start, steps: int, noise: float, seed: int, specs) -> str:
    """The snippet of ``POST /api/trajectories``: a ``paths`` dict label -> (k + 1, 2) array
    (k = steps, or fewer for a diverged run)."""
    lines = ["import numpy as np", "import optimlab as ol", surface_code(source)]
    plus = " + noise[t]" if noise > 0.0 else ""
    run = _RUN.format(start=tuple(start), steps=steps, noise=noise, seed=seed, plus_noise=plus)
    body = ",\n".join(f"    {spec.label!r}: run({optimizer_code(spec)})" for spec in specs)
    return "\n".join(lines) + run + "paths = {\n" + body + ",\n}\n"
