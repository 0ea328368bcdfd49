"""The play API's limits hold for typed functions too: the costliest gradient the parser
accepts shrinks every budget (trajectories, anatomy, basin and (lr, beta) maps): the largest
request still allowed is answered and one step more is refused (benchmarks/play_load.py
times these largest requests); and a domain or start that only the parser refuses is a 400
naming it, not a 500."""

from __future__ import annotations

import pytest

from optimlab.play import api
from optimlab.play.errors import RequestError
from optimlab.play.expression import MAX_GRADIENT_COST, parse_expression
from optimlab.play.requests import LIMITS, work_factor

ROUTE = {path: fn for (_, path), fn in api.ROUTES.items()}


def _costly() -> str:
    """The costliest gradient found within the parser's limits (its 300 characters bind
    before its gradient-cost ceiling does): nested sin/tanh, times itself in y."""
    best, inner = (0, ""), "x*y"
    for depth in range(1, 80):
        inner = ("sin" if depth % 2 else "tanh") + f"({inner}+x)"
        text = inner + "*" + inner.replace("x", "y")
        try:
            cost = parse_expression(text).gradient_cost
        except ValueError:
            break
        best = max(best, (cost, text))
    return best[1]


COSTLY = _costly()


def _refused(path, body):
    with pytest.raises(RequestError) as info:
        ROUTE[path](body)
    return info.value


def test_the_costly_function_is_near_the_ceiling():
    cost = parse_expression(COSTLY).gradient_cost
    assert 200 < cost <= MAX_GRADIENT_COST
    assert work_factor(parse_expression(COSTLY).surface()) >= 13


def _largest_steps(factor: int, optimizers: int) -> int:
    return min(LIMITS["steps"], LIMITS["trajectory_steps"] // (factor * optimizers))


def test_trajectories_of_a_costly_function_are_budgeted():
    factor = work_factor(parse_expression(COSTLY).surface())
    opts = [{"name": n} for n in ("SGD", "Momentum", "NAG", "RMSprop", "Adam")]
    steps = _largest_steps(factor, len(opts))
    body = {"expression": COSTLY, "start": [0.5, 0.5], "steps": steps, "optimizers": opts}
    out = ROUTE["/api/trajectories"](body)
    assert len(out["runs"][0]["path"]) == steps + 1
    error = _refused("/api/trajectories", {**body, "steps": steps + 1})
    assert error.field == "steps" and "for this function" in str(error)


def test_anatomy_and_maps_of_a_costly_function_are_budgeted():
    factor = work_factor(parse_expression(COSTLY).surface())
    body = {"expression": COSTLY, "steps": 5000, "optimizer": {"name": "Adam"}, "step": 5000}
    assert _refused("/api/anatomy", body).field == "step"
    k = LIMITS["steps"] // factor
    assert ROUTE["/api/anatomy"]({**body, "step": k})["step"] == k
    basins = {"kind": "basins", "expression": COSTLY, "optimizer": {"name": "Adam"}}
    assert _refused("/api/sweep", {**basins, "grid": 64, "steps": 200}).field == "grid"
    out = ROUTE["/api/sweep"](
        {**basins, "grid": 16, "steps": LIMITS["basin_work"] // (256 * factor)}
    )
    assert len(out["basin"]) == 16


@pytest.mark.parametrize(
    "extra,field",
    [({"domain": [[-3, 3], [-3, 2e6]]}, "domain"), ({"start": [0.0, 3e6]}, "start")],
)
def test_a_domain_or_start_only_the_parser_refuses_is_a_400(extra, field):
    body = {"expression": "x^2 + y^2", "optimizers": [{"name": "SGD"}], **extra}
    error = _refused("/api/trajectories", body)
    assert error.field.startswith(field) and error.status == 400
