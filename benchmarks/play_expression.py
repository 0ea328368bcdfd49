"""How fast typed functions of ``optimlab play`` are: the gradient of one point (it runs once
per step of every path) against the spec's targets, and the time to parse and differentiate
inputs built to be slow (deep nesting, power towers, wide sums), against 0.2 s.

    python benchmarks/play_expression.py
"""

from __future__ import annotations

import time
import timeit

import numpy as np

from optimlab.lab import surfaces
from optimlab.play import expression

ROSENBROCK = "(1 - x)^2 + 100*(y - x^2)^2"
GRADIENT_TARGETS_US = {"x**2 + 10*y**2": 20.0, ROSENBROCK: 40.0}
ADVERSARIAL = [
    "sin(" * 49 + "x" + ")" * 49,
    "exp(" * 30 + "x*y" + ")" * 30,
    "x^" * 99 + "x",
    "^".join(["(x+y)"] * 40),
    "+".join(f"exp(sin({k}*x+y)*cos(y*x))*tanh(x-y)" for k in range(8)),
    "/".join(["(x+y)"] * 40),
    "x^(" * 49 + "y" + ")" * 49,
    "sin(x^y/cos(y^x))*" * 9 + "x",
]


def _gradient_us(surface) -> float:
    """Best of 5 repeats of 2000 gradients of one (1, 2) point, CPU time of this process."""
    p = np.array([[0.3, -0.7]])
    runs = timeit.repeat(
        lambda: surface.gradient(p), number=2000, repeat=5, timer=time.process_time
    )
    return min(runs) / 2000 * 1e6


def main() -> None:
    """Print every figure with its target."""
    for text, target in GRADIENT_TARGETS_US.items():
        us = _gradient_us(expression.parse_surface(text))
        print(f"gradient of {text!r} at one point: {us:.1f} us (target <= {target:g} us)")
    print(
        f"the registry's Rosenbrock, for scale: {_gradient_us(surfaces.get('rosenbrock')):.1f} us"
    )
    worst = (0.0, "")
    for text in ADVERSARIAL:
        expression._parse.cache_clear()
        start = time.perf_counter()
        try:
            expression.parse_expression(text)
        except expression.ExpressionError:
            pass
        worst = max(worst, (time.perf_counter() - start, text))
    print(f"slowest of {len(ADVERSARIAL)} adversarial inputs to parse and differentiate: "
          f"{worst[0] * 1e3:.1f} ms (target < 200 ms): {worst[1][:40]}...")  # fmt: skip


if __name__ == "__main__":
    main()
