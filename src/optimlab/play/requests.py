"""Validation of the API's requests: one function per kind of field, each raising
:class:`~optimlab.play.errors.RequestError` with the field's path and optimlab's own message
(the argument, the value given and the valid range). A refused request changes nothing.

The limits that keep one request under a second on two cores live here (:data:`LIMITS`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from .. import optimizers, presets
from .._validation import check_bool, check_choice, check_float, check_int, show  # noqa: F401
from ..lab import contenders, surfaces
from . import catalog
from .errors import RequestError

__all__ = [
    "LIMITS",
    "OptimizerSpec",
    "keys",
    "number",
    "integer",
    "boolean",
    "choice",
    "obj",
    "surface_of",
    "domain_of",
    "point",
    "optimizer_of",
    "optimizer_list",
    "budget",
]

#: the bounds of a request (each refusal names its limit)
LIMITS = {
    "steps": 5000,
    "optimizers": 8,
    "trajectory_steps": 20000,  # steps x optimizers of one trajectories request
    "grid_n": (16, 256),
    "basin_grid": (8, 128),
    "basin_work": 2_100_000,  # grid^2 x steps of one basin map (64^2 x 512)
    "lr_beta_count": 64,
    "lr_beta_work": 1_000_000,  # learning rates x betas x steps of one (lr, beta) map
    "coordinate": 1e6,  # |x|, |y| of a start or a domain bound
    "label": 60,
    "seed": 2**32 - 1,
    "regression_updates": 5000,
}

MAX_COORDINATE = LIMITS["coordinate"]


def _checked(field: str, check: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run an optimlab check; its TypeError/ValueError becomes a RequestError at ``field``."""
    try:
        return check(*args, **kwargs)
    except (TypeError, ValueError, OverflowError) as error:
        raise RequestError(field, str(error)) from None


def join(prefix: str, key: str | int) -> str:
    """The path of ``key`` inside the field ``prefix``: ``a.b``, ``a[0]``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix and prefix != "body" else key


def obj(value: Any, field: str) -> dict:
    """``value`` must be a JSON object."""
    if not isinstance(value, dict):
        raise RequestError(field, f"{field} must be a JSON object, got {show(value)}")
    return value


def keys(body: dict, allowed, field: str = "body") -> None:
    """Refuse a key outside ``allowed`` (a typo must not pass silently)."""
    for key in body:
        if key not in allowed:
            raise RequestError(
                join(field, str(key)) if key else f"{field}['']",
                f"unknown field {show(key)}; valid: {', '.join(sorted(allowed))}",
            )


def number(body: dict, key: str, field: str, default: Any, *args: Any, **kwargs: Any) -> float:
    """A float field (``check_float(key, value, *args)``), or ``default`` when absent."""
    if key not in body:
        return default
    return _checked(join(field, key), check_float, key, body[key], *args, **kwargs)


def integer(
    body: dict, key: str, field: str, default: Any, low: int | None, high: int | None
) -> int:
    """An integer field in [low, high], or ``default`` when absent."""
    if key not in body:
        return default
    return _checked(join(field, key), check_int, key, body[key], low, high)


def boolean(body: dict, key: str, field: str, default: bool) -> bool:
    """A true/false field, or ``default`` when absent."""
    if key not in body:
        return default
    return _checked(join(field, key), check_bool, key, body[key])


def choice(body: dict, key: str, field: str, default: Any, choices) -> Any:
    """One of ``choices``, or ``default`` when absent."""
    if key not in body:
        return default
    return _checked(join(field, key), check_choice, key, body[key], tuple(choices))


def point(value: Any, field: str, name: str) -> tuple[float, float]:
    """``[x, y]``: two finite floats with |x|, |y| <= 1e6."""
    if not isinstance(value, list) or len(value) != 2:
        raise RequestError(field, f"{name} must be a list [x, y] of two numbers, got {show(value)}")
    bound = MAX_COORDINATE
    x = _checked(f"{field}[0]", check_float, f"{name}[0]", value[0], -bound, bound)
    y = _checked(f"{field}[1]", check_float, f"{name}[1]", value[1], -bound, bound)
    return x, y


def domain_of(body: dict, field: str = "domain"):
    """``[[xmin, xmax], [ymin, ymax]]`` with finite bounds, |bound| <= 1e6, min < max; None
    when absent."""
    if "domain" not in body:
        return None
    value = body["domain"]
    if not isinstance(value, list) or len(value) != 2:
        raise RequestError(
            field,
            f"domain must be [[xmin, xmax], [ymin, ymax]], got {show(value)}",
        )
    out = []
    for i, axis in enumerate("xy"):
        low, high = point(value[i], f"{field}[{i}]", f"domain[{i}]")
        if not low < high:
            raise RequestError(
                f"{field}[{i}]",
                f"domain[{i}] must have {axis}min < {axis}max, got [{low!r}, {high!r}]",
            )
        out.append((low, high))
    return tuple(out)


def surface_of(body: dict, *, start: tuple[float, float] | None = None):
    """The surface of a request: ``"surface"`` (a name of optimlab.lab.surfaces) or
    ``"expression"`` (a typed function, parsed by :mod:`optimlab.play.expression`), exactly
    one; ``"domain"`` replaces its plotting box. Returns (surface, source) where source is
    what the code snippet needs: ``{"surface": name}`` or ``{"expression": text}``, plus
    ``"domain"`` when given."""
    has_name, has_text = "surface" in body, "expression" in body
    if has_name == has_text:
        raise RequestError(
            "surface",
            "give exactly one of surface (a name: "
            + ", ".join(surfaces.SURFACES)
            + ") or expression (a function of x and y such as 'x**2 + 10*y**2')"
            + (", got both" if has_name else ", got neither"),
        )
    domain = domain_of(body)
    if has_name:
        name = body["surface"]
        surface = _checked("surface", surfaces.get, name)
        source: dict = {"surface": surface.name}
        if domain is not None:
            surface = dataclasses.replace(surface, domain=domain)
    else:
        text = body["expression"]
        if not isinstance(text, str):
            raise RequestError(
                "expression", f"expression must be a string such as 'x**2 + y**2', got {show(text)}"
            )
        surface = _expression(text, domain, start)
        source = {"expression": text}
    if domain is not None:
        source["domain"] = domain
    return surface, source


def _expression(text: str, domain, start):
    try:
        from .expression import ExpressionError, parse_surface
    except ImportError:  # pragma: no cover - the module ships with the package
        raise RequestError("expression", "typed functions are not available") from None
    kwargs: dict = {}
    if domain is not None:
        kwargs["domain"] = domain
    if start is not None:
        kwargs["start"] = start
    try:
        return parse_surface(text, **kwargs)
    except ExpressionError as error:
        raise RequestError("expression", str(error), position=error.position) from None
    except ValueError as error:  # the expression's own, stricter, check of domain or start
        field = "start" if str(error).startswith("start") else "domain"
        raise RequestError(field, str(error)) from None


#: a typed function whose gradient takes more than this many NumPy calls counts as more than
#: one gradient in the work budgets (a registry surface's gradient is about this cheap)
_GRADIENT_CALLS = 16


def work_factor(surface) -> int:
    """How many registry-surface gradients one gradient of ``surface`` costs: 1, or for a
    typed function ceil(its gradient's NumPy calls / 16) (so its budgets shrink with it)."""
    if getattr(surface, "name", None) != "expression":
        return 1
    from .expression import parse_expression

    cost = parse_expression(surface.formula).gradient_cost
    return max(1, math.ceil(cost / _GRADIENT_CALLS))


def budget(field: str, what: str, used: int, limit: int, factor: int = 1) -> None:
    """Refuse work above ``limit`` (``what`` says how it is counted); ``factor``: the
    surface's :func:`work_factor`, by which the limit shrinks for a costly typed function."""
    if used * factor > limit:
        if factor > 1:
            raise RequestError(
                field,
                f"{what} must be at most {limit // factor} for this function (its gradient "
                f"costs {factor} times a built-in surface's), got {used}",
            )
        raise RequestError(field, f"{what} must be at most {limit}, got {used}")


# ---------------------------------------------------------------------------------------------
# Optimizers


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """A validated optimizer of a request: ``label`` (shown), ``name`` (lab name such as
    "Momentum"), ``base`` (the optimlab optimizer, "SGD"), ``preset``, ``learning_rate``
    (a float: the schedule's initial rate when there is one), ``kwargs`` (every other
    argument given to ``optimlab.get``: the lab name's fixed ones, then the request's),
    ``schedule`` (None or ``(class name, arguments)``, arguments without the rate)."""

    label: str
    name: str
    base: str
    preset: str
    learning_rate: float
    kwargs: dict
    schedule: tuple[str, dict] | None

    def make_schedule(self):
        """A new schedule object (None without a schedule)."""
        if self.schedule is None:
            return None
        name, arguments = self.schedule
        info = catalog.SCHEDULES[name]
        return info.cls(**{info.rate_argument: self.learning_rate, **arguments})

    def make(self, **extra):
        """A new ``optimlab`` optimizer of this spec (reference engine, float64)."""
        lr = self.make_schedule()
        return optimizers.get(
            self.base,
            learning_rate=self.learning_rate if lr is None else lr,
            preset=self.preset,
            engine="reference",
            **self.kwargs,
            **extra,
        )


_OPTIMIZER_KEYS = ("name", "preset", "hyperparameters", "schedule", "label")


def _field_for(message: str, given: dict, field: str) -> str:
    """The path of the argument an optimlab message is about (its first word, or the first
    given argument it names), else the object itself."""
    first = message.split(" ", 1)[0]
    if first in given:
        return join(field, first)
    for key in given:
        if f"{key}=" in message or f" {key} " in f" {message} ":
            return join(field, key)
    return field


def optimizer_of(value: Any, field: str, steps: int, *, allowed_names=None) -> OptimizerSpec:
    """Validate one optimizer object ``{"name", "preset"?, "hyperparameters"?, "schedule"?,
    "label"?}`` by building it with optimlab (every message is optimlab's own)."""
    spec = obj(value, field)
    keys(spec, _OPTIMIZER_KEYS, field)
    names = allowed_names or catalog.lab_names()
    if "name" not in spec:
        raise RequestError(join(field, "name"), f"name is required; valid: {', '.join(names)}")
    raw = spec["name"]
    by_lower = {n.lower(): n for n in names}
    if not isinstance(raw, str) or raw.lower() not in by_lower:
        raise RequestError(
            join(field, "name"), f"name must be one of {', '.join(names)}, got {show(raw)}"
        )
    name = by_lower[raw.lower()]
    base, fixed = contenders.CONTENDERS[name]
    preset = choice(spec, "preset", field, "keras", presets.PRESETS)
    label = spec.get("label", name if preset == "keras" else f"{name} ({preset})")
    if not isinstance(label, str) or not 0 < len(label) <= LIMITS["label"]:
        raise RequestError(
            join(field, "label"),
            f"label must be a string of 1 to {LIMITS['label']} characters, got {show(label)}",
        )
    hyper_field = join(field, "hyperparameters")
    given = obj(spec.get("hyperparameters", {}), hyper_field)
    accepted = ("learning_rate", "weight_decay", *optimizers.OPTIMIZERS[base].hyperparameters)
    keys(given, accepted, hyper_field)
    lr = given.get("learning_rate", catalog.default_value(name, "learning_rate", preset))
    lr = _checked(join(hyper_field, "learning_rate"), check_float, "learning_rate", lr, 0.0)
    kwargs = {**fixed, **{k: v for k, v in given.items() if k != "learning_rate"}}
    schedule = _schedule_of(spec.get("schedule"), join(field, "schedule"), lr, steps)
    result = OptimizerSpec(label, name, base, preset, lr, kwargs, schedule)
    try:
        opt = result.make()
    except (TypeError, ValueError, OverflowError) as error:
        message = str(error)
        raise RequestError(_field_for(message, given, hyper_field), message) from None
    if opt.use_ema or opt.gradient_accumulation_steps is not None:  # pragma: no cover
        raise RequestError(hyper_field, "use_ema and gradient_accumulation_steps are not offered")
    return result


def _schedule_of(value: Any, field: str, lr: float, steps: int):
    """``None`` or ``{"name": class, "arguments": {...}}``: built once with the learning rate
    and evaluated at every step 0..steps-1 (a value it cannot give is refused here)."""
    if value is None:
        return None
    spec = obj(value, field)
    keys(spec, ("name", "arguments"), field)
    raw = spec.get("name")
    if raw not in catalog.SCHEDULES:
        raise RequestError(
            join(field, "name"),
            f"name must be one of {', '.join(catalog.SCHEDULES)}, got {show(raw)}",
        )
    info = catalog.SCHEDULES[raw]
    arg_field = join(field, "arguments")
    arguments = obj(spec.get("arguments", {}), arg_field)
    offered = {s.name: d for s, d in info.arguments}
    keys(arguments, offered, arg_field)
    merged = {**offered, **arguments}
    try:
        schedule = info.cls(**{info.rate_argument: lr, **merged})
    except (TypeError, ValueError, OverflowError) as error:
        message = str(error)
        raise RequestError(_field_for(message, arguments, arg_field), message) from None
    for step in range(steps + 1):  # + 1: the anatomy of the last step looks one further
        try:
            rate = schedule(step)
            ok = isinstance(rate, float) and math.isfinite(rate) and rate >= 0.0
        except (TypeError, ValueError, OverflowError, ArithmeticError) as error:
            raise RequestError(field, f"{raw} cannot run {steps} steps: {error}") from None
        if not ok:
            raise RequestError(
                field, f"{raw} returned {show(rate)} at step {step}; a rate must be a float >= 0"
            )
    return raw, merged


def optimizer_list(body: dict, steps: int) -> list[OptimizerSpec]:
    """``"optimizers"``: a list of 1..8 optimizer objects."""
    value = body.get("optimizers")
    limit = LIMITS["optimizers"]
    if not isinstance(value, list) or not 1 <= len(value) <= limit:
        got = f"a list of {len(value)}" if isinstance(value, list) else show(value)
        raise RequestError(
            "optimizers",
            f"optimizers must be a list of 1 to {limit} optimizer objects "
            '({"name": "Adam", "preset": "keras", "hyperparameters": {...}}), got ' + got,
        )
    return [optimizer_of(v, f"optimizers[{i}]", steps) for i, v in enumerate(value)]
