"""Two-dimensional test functions with analytic value, gradient and Hessian.

Each :class:`Surface` evaluates whole batches of points at once: ``xy`` of shape ``(..., 2)``
gives values ``(...)``, gradients ``(..., 2)`` and Hessians ``(..., 2, 2)``, all float64, so a
sweep can move thousands of optimizers over the same landscape in one NumPy computation.

The registry :data:`SURFACES` holds one surface per challenge of the lecture: convex bowls
(one basin, one learning rate for every direction), the high-curvature ravine, local minima,
saddle points and plateaus. The classic functions follow the Virtual Library of Simulation
Experiments (Surjanovic and Bingham, sfu.ca/~ssurjano/optimization.html); their listed minima are
polished by Newton's method at import time, so the gradient there is zero to rounding.

    >>> from optimlab.lab import surfaces
    >>> s = surfaces.get("rosenbrock")
    >>> s.value([[1.0, 1.0], [0.0, 0.0]])
    array([0., 1.])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_float

__all__ = ["Minimum", "Surface", "SURFACES", "TAGS", "get", "names", "quadratic"]

#: The tags a surface may carry, each naming the lecture concept it illustrates.
TAGS = frozenset(
    {
        "convex",
        "non-convex",
        "ravine",
        "ill-conditioned",
        "local-minima",
        "saddle",
        "plateau",
        "multimodal",
        "unbounded",
    }
)

_KINDS = ("global", "local")

# Per-coordinate functions of a surface: f(x, y) -> f; grad(x, y) -> (f_x, f_y);
# hess(x, y) -> (f_xx, f_xy, f_yy). Each works on broadcastable arrays and on Python floats.
_Fn = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Minimum:
    """A minimum of a surface: ``f(point) = value``, ``grad f(point) = 0``, Hessian positive
    definite there.

    ``kind`` is ``"global"`` (lowest value of the surface) or ``"local"`` (lowest in its basin
    only: the lecture's "sub optimum" where gradient descent stops because dL/dw = 0).
    """

    point: tuple[float, float]
    value: float
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of 'global', 'local', got {self.kind!r}")


def _as_points(xy: Any) -> np.ndarray:
    """``xy`` as a float64 array whose last axis holds (x, y)."""
    array = np.asarray(xy)
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"xy must be an array-like of real numbers with shape (..., 2), got dtype "
            f"{array.dtype} ({type(xy).__name__})"
        )
    if array.ndim == 0 or array.shape[-1] != 2:
        raise ValueError(
            f"xy must have shape (..., 2) (the last axis holds x and y), got shape {array.shape}"
        )
    return array.astype(np.float64, copy=False)


@dataclass(frozen=True, eq=False)
class Surface:
    """A 2-D test function f(x, y) with its analytic gradient and Hessian.

    ``formula`` states f in plain notation and ``description`` the lecture concept it shows;
    ``minima`` lists the global minima first, then local ones (``()`` when f is unbounded
    below); ``starts`` maps a name (saying where the start comes from) to a point, the first
    being the default; ``domain`` is the plotting box ``((xmin, xmax), (ymin, ymax))``, which
    contains every listed minimum and start. ``log_levels`` is True when f >= f_min everywhere,
    so contours can be drawn at log-spaced levels of f - f_min.

    Calling the surface evaluates it: ``surface(xy) == surface.value(xy)``. Surfaces compare by
    identity (two surfaces with the same equation are still two objects).
    """

    name: str
    title: str
    formula: str
    description: str
    minima: tuple[Minimum, ...]
    starts: dict[str, tuple[float, float]]
    domain: tuple[tuple[float, float], tuple[float, float]]
    tags: frozenset[str]
    log_levels: bool
    _f: _Fn = field(repr=False)
    _grad: _Fn = field(repr=False)
    _hess: _Fn = field(repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.tags) - TAGS
        if unknown:
            raise ValueError(
                f"tags must be a subset of {', '.join(sorted(TAGS))}, got {sorted(unknown)}"
            )
        if not self.starts:
            raise ValueError(f"starts of surface {self.name!r} must name at least one point")

    def value(self, xy: Any) -> np.ndarray:
        """f(x, y) at every point of ``xy`` (shape ``(..., 2)``), as an array of shape ``(...)``."""
        points = _as_points(xy)
        out = np.empty(points.shape[:-1])
        out[...] = self._f(points[..., 0], points[..., 1])
        return out

    def gradient(self, xy: Any) -> np.ndarray:
        """grad f = (df/dx, df/dy) at every point of ``xy``: shape ``(..., 2)``."""
        points = _as_points(xy)
        fx, fy = self._grad(points[..., 0], points[..., 1])
        out = np.empty(points.shape)
        out[..., 0] = fx
        out[..., 1] = fy
        return out

    def hessian(self, xy: Any) -> np.ndarray:
        """H = [[f_xx, f_xy], [f_xy, f_yy]] at every point of ``xy``: shape ``(..., 2, 2)``."""
        points = _as_points(xy)
        fxx, fxy, fyy = self._hess(points[..., 0], points[..., 1])
        out = np.empty(points.shape + (2,))
        out[..., 0, 0] = fxx
        out[..., 0, 1] = fxy
        out[..., 1, 0] = fxy
        out[..., 1, 1] = fyy
        return out

    def __call__(self, xy: Any) -> np.ndarray:
        """f(x, y), the same as :meth:`value`."""
        return self.value(xy)

    @property
    def default_start(self) -> np.ndarray:
        """The first of ``starts`` as a new float64 array of shape ``(2,)``."""
        return np.array(next(iter(self.starts.values())), dtype=np.float64)

    @property
    def global_minimum(self) -> Minimum | None:
        """The first global minimum (f_min = its value), or None when f is unbounded below."""
        return next((m for m in self.minima if m.kind == "global"), None)


def f_min(surface) -> float:
    """f at ``surface.global_minimum``, or 0.0 for a surface without one (unbounded below, the
    saddles): ``f - f_min`` is then the gap to the minimum where there is one and f itself
    otherwise. Works for any object with a ``global_minimum`` attribute."""
    minimum = getattr(surface, "global_minimum", None)
    return 0.0 if minimum is None else float(minimum.value)


# ---------------------------------------------------------------------------------------------
# Building blocks


def _newton(grad: _Fn, hess: _Fn, seed: tuple[float, float]) -> tuple[float, float]:
    """Polish ``seed`` into a stationary point: (x, y) <- (x, y) - H^-1 grad f, until the step
    stops changing the point (quadratic convergence, a few iterations from a 3-digit seed)."""
    x, y = float(seed[0]), float(seed[1])
    for _ in range(60):
        fx, fy = grad(x, y)
        fxx, fxy, fyy = hess(x, y)
        det = fxx * fyy - fxy * fxy
        dx = (fyy * fx - fxy * fy) / det
        dy = (fxx * fy - fxy * fx) / det
        x, y = float(x - dx), float(y - dy)
        if abs(dx) + abs(dy) <= 1e-15 * (1.0 + abs(x) + abs(y)):
            break
    return x, y


def _minima(
    f: _Fn, grad: _Fn, hess: _Fn, seeds: list[tuple[tuple[float, float], str]]
) -> tuple[Minimum, ...]:
    """One :class:`Minimum` per ``(seed, kind)``, its point polished by :func:`_newton`."""
    found = []
    for seed, kind in seeds:
        x, y = _newton(grad, hess, seed)
        found.append(Minimum(point=(x, y), value=float(f(x, y)), kind=kind))
    return tuple(found)


def _surface(
    name: str,
    title: str,
    formula: str,
    description: str,
    fns: tuple[_Fn, _Fn, _Fn],
    seeds: list[tuple[tuple[float, float], str]],
    starts: dict[str, tuple[float, float]],
    domain: tuple[tuple[float, float], tuple[float, float]],
    tags: set[str],
) -> Surface:
    """Assemble a :class:`Surface`; ``log_levels`` holds exactly when a global minimum exists."""
    f, grad, hess = fns
    minima = _minima(f, grad, hess, seeds)
    return Surface(
        name=name,
        title=title,
        formula=formula,
        description=description,
        minima=minima,
        starts=dict(starts),
        domain=domain,
        tags=frozenset(tags),
        log_levels=any(m.kind == "global" for m in minima),
        _f=f,
        _grad=grad,
        _hess=hess,
    )


# ---------------------------------------------------------------------------------------------
# The quadratic ravine


def quadratic(
    condition_number: float = 100.0, angle: float = math.pi / 4, name: str = "ravine"
) -> Surface:
    """The rotated quadratic f(x, y) = 0.5 (l1 u^2 + l2 v^2), l1 = 1, l2 = condition_number.

    (u, v) are the coordinates of (x, y) in the basis rotated by ``angle``:
    u = x cos(a) + y sin(a) runs along the floor of the ravine (curvature 1) and
    v = -x sin(a) + y cos(a) across it (curvature kappa). The Hessian
    H = R diag(1, kappa) R^T is constant with eigenvalues 1 and kappa, so gradient descent is
    stable exactly for learning rates 0 < eta < 2 / kappa and the best fixed rate is
    2 / (1 + kappa). This is the high-curvature ravine of the lecture, the 2-D quadratic of
    Goh, "Why momentum really works" (Distill, 2017: kappa = 100, angle pi/4). The default start
    is (-3, -2); for angle pi/4 that is 3.5 along the floor and 0.7 up the steep wall.

    ``condition_number`` must be a finite float >= 1, ``angle`` a finite float (radians) and
    ``name`` a non-empty string (the registry key when the surface is registered).
    """
    kappa = check_float("condition_number", condition_number, 1.0)
    a = check_float("angle", angle)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    c, s = math.cos(a), math.sin(a)
    hxx, hxy, hyy = c * c + kappa * s * s, (1.0 - kappa) * c * s, s * s + kappa * c * c

    def f(x, y):
        u, v = c * x + s * y, -s * x + c * y
        return 0.5 * (u * u + kappa * v * v)

    def grad(x, y):
        return hxx * x + hxy * y, hxy * x + hyy * y

    def hess(x, y):
        return hxx, hxy, hyy

    tags = {"convex"} | ({"ravine", "ill-conditioned"} if kappa >= 10 else set())
    return _surface(
        name=name,
        title=f"Quadratic ravine (kappa = {kappa:g})",
        formula=(
            f"f(x, y) = 0.5 (u^2 + {kappa:g} v^2), u = x cos(a) + y sin(a), "
            f"v = -x sin(a) + y cos(a), a = {a:.6g}"
        ),
        description=(
            f"High curvature: one learning rate for both directions. The steep direction "
            f"(curvature {kappa:g}) caps the learning rate at 2 / {kappa:g}, so progress along "
            f"the shallow floor (curvature 1) is {kappa:g} times slower; momentum damps the "
            "zig-zag across the walls and keeps the speed along the floor."
        ),
        fns=(f, grad, hess),
        seeds=[((0.0, 0.0), "global")],
        starts={"lab": (-3.0, -2.0)},
        domain=((-4.0, 4.0), (-4.0, 4.0)),
        tags=tags,
    )


# ---------------------------------------------------------------------------------------------
# Convex bowls and plates


def _bowl():
    def f(x, y):
        return x * x + y * y

    def grad(x, y):
        return 2.0 * x, 2.0 * y

    def hess(x, y):
        return 2.0, 0.0, 2.0

    return _surface(
        name="bowl",
        title="Round bowl",
        formula="f(x, y) = x^2 + y^2",
        description=(
            "Convex, perfectly round (Hessian 2 I, condition number 1): one basin, the gradient "
            "points straight at the minimum and one learning rate suits every direction "
            "(gradient descent with eta = 0.5 lands on it in one step)."
        ),
        fns=(f, grad, hess),
        seeds=[((0.0, 0.0), "global")],
        starts={"lab": (-4.0, 3.0)},
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        tags={"convex"},
    )


def _booth():
    def f(x, y):
        return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2

    def grad(x, y):
        r1, r2 = x + 2 * y - 7, 2 * x + y - 5
        return 2 * r1 + 4 * r2, 4 * r1 + 2 * r2

    def hess(x, y):
        return 10.0, 8.0, 10.0

    return _surface(
        name="booth",
        title="Booth",
        formula="f(x, y) = (x + 2y - 7)^2 + (2x + y - 5)^2",
        description=(
            "A convex plate (Booth; Surjanovic and Bingham's plate-shaped group): a tilted "
            "elliptic bowl with curvatures 2 and 18 (kappa = 9). Every start reaches the one "
            "minimum at (1, 3); the loss of a linear model looks like this."
        ),
        fns=(f, grad, hess),
        seeds=[((1.0, 3.0), "global")],
        starts={"lab": (-5.0, 8.0)},
        domain=((-10.0, 10.0), (-10.0, 10.0)),
        tags={"convex"},
    )


def _matyas():
    def f(x, y):
        return 0.26 * (x * x + y * y) - 0.48 * x * y

    def grad(x, y):
        return 0.52 * x - 0.48 * y, 0.52 * y - 0.48 * x

    def hess(x, y):
        return 0.52, -0.48, 0.52

    return _surface(
        name="matyas",
        title="Matyas",
        formula="f(x, y) = 0.26 (x^2 + y^2) - 0.48 x y",
        description=(
            "A convex plate (Matyas) whose valley runs along the diagonal y = x: curvatures "
            "0.04 and 1 (kappa = 25) on axes rotated by 45 degrees, so per-coordinate learning "
            "rates (Adagrad, RMSprop, Adam) cannot align with the valley."
        ),
        fns=(f, grad, hess),
        seeds=[((0.0, 0.0), "global")],
        starts={"lab": (-8.0, -4.0)},
        domain=((-10.0, 10.0), (-10.0, 10.0)),
        tags={"convex", "ravine", "ill-conditioned"},
    )


# ---------------------------------------------------------------------------------------------
# Valleys with steep walls


def _rosenbrock():
    a, b = 1.0, 100.0

    def f(x, y):
        return (a - x) ** 2 + b * (y - x * x) ** 2

    def grad(x, y):
        w = y - x * x
        return -2 * (a - x) - 4 * b * x * w, 2 * b * w

    def hess(x, y):
        return 2 - 4 * b * y + 12 * b * x * x, -4 * b * x, 2 * b

    return _surface(
        name="rosenbrock",
        title="Rosenbrock",
        formula="f(x, y) = (1 - x)^2 + 100 (y - x^2)^2",
        description=(
            "Rosenbrock's banana valley (1960): a curved ravine with steep walls (condition "
            "number about 2500 at the minimum (1, 1)). Gradient descent zig-zags between the "
            "walls and crawls along the floor; momentum and adaptive rates are faster."
        ),
        fns=(f, grad, hess),
        seeds=[((1.0, 1.0), "global")],
        starts={"classic": (-1.2, 1.0), "torch_optimizer_gallery": (-2.0, 2.0)},
        domain=((-2.5, 2.0), (-1.0, 3.5)),
        tags={"non-convex", "ravine", "ill-conditioned"},
    )


_BEALE_C = (1.5, 2.25, 2.625)


def _beale():
    # f = sum_i r_i^2, r_i = c_i - x + x y^i; grad f = 2 sum r_i grad r_i,
    # H = 2 sum (grad r_i grad r_i^T + r_i H_i), grad r_i = (y^i - 1, i x y^(i-1)).
    def f(x, y):
        return sum((c - x + x * y**i) ** 2 for i, c in enumerate(_BEALE_C, 1))

    def grad(x, y):
        fx = fy = 0.0
        for i, c in enumerate(_BEALE_C, 1):
            r = c - x + x * y**i
            fx = fx + 2 * r * (y**i - 1)
            fy = fy + 2 * r * i * x * y ** (i - 1)
        return fx, fy

    def hess(x, y):
        fxx = fxy = fyy = 0.0
        for i, c in enumerate(_BEALE_C, 1):
            r = c - x + x * y**i
            rx, ry = y**i - 1, i * x * y ** (i - 1)
            ryy = i * (i - 1) * x * y ** (i - 2) if i >= 2 else 0.0
            fxx = fxx + 2 * rx * rx
            fxy = fxy + 2 * (rx * ry + r * i * y ** (i - 1))
            fyy = fyy + 2 * (ry * ry + r * ryy)
        return fxx, fxy, fyy

    return _surface(
        name="beale",
        title="Beale",
        formula=("f(x, y) = (1.5 - x + x y)^2 + (2.25 - x + x y^2)^2 + (2.625 - x + x y^3)^2"),
        description=(
            "Beale: steep walls at the corners (|grad f| up to about 10^6) next to a nearly "
            "flat region along x = 0 (f = 14.2 there, with a saddle at (0, 1)); no single "
            "learning rate suits both, which is what adaptive rates fix."
        ),
        fns=(f, grad, hess),
        seeds=[((3.0, 0.5), "global")],
        starts={
            "torch_optimizer_tests": (1.5, 1.5),
            "tiao_blog": (3.0, 4.0),
            "deepobs": (-4.5, 4.5),
        },
        domain=((-4.5, 4.5), (-4.5, 4.5)),
        tags={"non-convex", "plateau"},
    )


# ---------------------------------------------------------------------------------------------
# Several minima


def _himmelblau():
    def f(x, y):
        return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2

    def grad(x, y):
        a, b = x * x + y - 11, x + y * y - 7
        return 4 * x * a + 2 * b, 2 * a + 4 * y * b

    def hess(x, y):
        a, b = x * x + y - 11, x + y * y - 7
        return 4 * a + 8 * x * x + 2, 4 * x + 4 * y, 2 + 4 * b + 8 * y * y

    return _surface(
        name="himmelblau",
        title="Himmelblau",
        formula="f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        description=(
            "Himmelblau (1972): non-convex with four equally deep minima (f = 0), four saddles "
            "and a local maximum near (-0.27, -0.92). Which minimum gradient descent finds "
            "depends only on the start: a basin-of-attraction map shows four regions."
        ),
        fns=(f, grad, hess),
        seeds=[
            ((3.0, 2.0), "global"),
            ((-2.805, 3.131), "global"),
            ((-3.779, -3.283), "global"),
            ((3.584, -1.848), "global"),
        ],
        starts={"lab": (0.0, 0.0)},
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        tags={"non-convex", "multimodal"},
    )


def _six_hump_camel():
    def f(x, y):
        x2, y2 = x * x, y * y
        return (4 - 2.1 * x2 + x2 * x2 / 3) * x2 + x * y + (-4 + 4 * y2) * y2

    def grad(x, y):
        return 8 * x - 8.4 * x**3 + 2 * x**5 + y, x - 8 * y + 16 * y**3

    def hess(x, y):
        return 8 - 25.2 * x * x + 10 * x**4, 1.0, -8 + 48 * y * y

    return _surface(
        name="six_hump_camel",
        title="Six-hump camel",
        formula="f(x, y) = (4 - 2.1 x^2 + x^4 / 3) x^2 + x y + (-4 + 4 y^2) y^2",
        description=(
            "Six-hump camel back: six minima of three different depths (two global at f = "
            "-1.0316, two local at -0.2155, two local at 2.1043). Gradient descent keeps "
            "whichever basin it starts in: local minima are real sub-optima."
        ),
        fns=(f, grad, hess),
        seeds=[
            ((0.0898, -0.7126), "global"),
            ((-0.0898, 0.7126), "global"),
            ((-1.7036, 0.7961), "local"),
            ((1.7036, -0.7961), "local"),
            ((-1.6071, -0.5687), "local"),
            ((1.6071, 0.5687), "local"),
        ],
        starts={"lab": (-2.0, 1.0)},
        domain=((-2.5, 2.5), (-1.5, 1.5)),
        tags={"non-convex", "multimodal", "local-minima"},
    )


def _rastrigin():
    A, w = 10.0, 2.0 * math.pi

    def f(x, y):
        return 2 * A + x * x + y * y - A * (np.cos(w * x) + np.cos(w * y))

    def grad(x, y):
        return 2 * x + A * w * np.sin(w * x), 2 * y + A * w * np.sin(w * y)

    def hess(x, y):
        return 2 + A * w * w * np.cos(w * x), 0.0, 2 + A * w * w * np.cos(w * y)

    ring = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]
    return _surface(
        name="rastrigin",
        title="Rastrigin",
        formula="f(x, y) = 20 + x^2 - 10 cos(2 pi x) + y^2 - 10 cos(2 pi y)",
        description=(
            "Rastrigin (A = 10): a bowl covered in ripples, with a local minimum near every "
            "integer point (121 in the domain; listed: the global one at the origin and its "
            "8 neighbours). Gradient descent stops in the nearest ripple."
        ),
        fns=(f, grad, hess),
        seeds=[((0.0, 0.0), "global")] + [((0.95 * i, 0.95 * j), "local") for i, j in ring],
        starts={"torch_optimizer_gallery": (-2.0, 3.5)},
        domain=((-5.12, 5.12), (-5.12, 5.12)),
        tags={"non-convex", "multimodal", "local-minima"},
    )


def _ackley():
    # f = A + B: the cone A = 20 (1 - exp(-0.2 rho)), rho = sqrt((x^2 + y^2) / 2), and the
    # ripples B = e - exp(c), c = (cos 2 pi x + cos 2 pi y) / 2. The cone has a kink at the
    # origin; its gradient and Hessian there are taken as 0 (0 is a subgradient of the cone).
    w = 2.0 * math.pi

    def rho(x, y):
        return np.sqrt(0.5 * (x * x + y * y))

    def f(x, y):
        c = 0.5 * (np.cos(w * x) + np.cos(w * y))
        return -20.0 * np.expm1(-0.2 * rho(x, y)) - math.e * np.expm1(c - 1.0)

    def cone_slope(r):
        # dA/dx = q(rho) x with q = 2 exp(-0.2 rho) / rho; q = 0 at rho = 0 by convention
        safe = np.where(r > 0, r, 1.0)
        return np.where(r > 0, 2.0 * np.exp(-0.2 * safe) / safe, 0.0), safe

    def grad(x, y):
        q, _ = cone_slope(rho(x, y))
        e_c = np.exp(0.5 * (np.cos(w * x) + np.cos(w * y)))
        return q * x + math.pi * e_c * np.sin(w * x), q * y + math.pi * e_c * np.sin(w * y)

    def hess(x, y):
        r = rho(x, y)
        q, safe = cone_slope(r)
        # q'(rho) / (2 rho), with q' = -2 exp(-0.2 rho) (0.2 / rho + 1 / rho^2)
        k = np.where(r > 0, -np.exp(-0.2 * safe) * (0.2 / safe + 1.0 / safe**2) / safe, 0.0)
        e_c = np.exp(0.5 * (np.cos(w * x) + np.cos(w * y)))
        sx, sy = np.sin(w * x), np.sin(w * y)
        bxx = math.pi * e_c * (w * np.cos(w * x) - math.pi * sx * sx)
        byy = math.pi * e_c * (w * np.cos(w * y) - math.pi * sy * sy)
        return q + k * x * x + bxx, k * x * y - math.pi**2 * e_c * sx * sy, q + k * y * y + byy

    ring = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]
    return _surface(
        name="ackley",
        title="Ackley",
        formula=(
            "f(x, y) = -20 exp(-0.2 sqrt((x^2 + y^2) / 2)) - exp((cos 2 pi x + cos 2 pi y) / 2)"
            " + e + 20"
        ),
        description=(
            "Ackley (1987): a cone with a sharp tip at the global minimum (0, 0), riddled with "
            "local minima near the integer points (listed: the 8 around the origin) and "
            "flattening far out. The cone's kink at the origin gets gradient 0 there."
        ),
        fns=(f, grad, hess),
        seeds=[((0.0, 0.0), "global")] + [((0.95 * i, 0.95 * j), "local") for i, j in ring],
        starts={"lab": (-3.5, 3.0)},
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        tags={"non-convex", "multimodal", "local-minima"},
    )


def _styblinski_tang():
    def f(x, y):
        return 0.5 * (x**4 - 16 * x * x + 5 * x + y**4 - 16 * y * y + 5 * y)

    def grad(x, y):
        return 2 * x**3 - 16 * x + 2.5, 2 * y**3 - 16 * y + 2.5

    def hess(x, y):
        return 6 * x * x - 16, 0.0, 6 * y * y - 16

    lo, hi = -2.9035, 2.7468
    return _surface(
        name="styblinski_tang",
        title="Styblinski-Tang",
        formula="f(x, y) = 0.5 (x^4 - 16 x^2 + 5 x + y^4 - 16 y^2 + 5 y)",
        description=(
            "Styblinski-Tang in 2-D: four wells of different depth, because the 5 x term tilts "
            "each coordinate's double well. The global minimum (-2.9035, -2.9035) has "
            "f = -78.332; the other three wells are local minima (f = -64.20, -64.20, -50.06)."
        ),
        fns=(f, grad, hess),
        seeds=[((lo, lo), "global"), ((lo, hi), "local"), ((hi, lo), "local"), ((hi, hi), "local")],
        starts={"lab": (0.0, 4.5)},
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        tags={"non-convex", "multimodal", "local-minima"},
    )


# ---------------------------------------------------------------------------------------------
# Saddles, plateaus, two wells


def _saddle():
    def f(x, y):
        return x * x - y * y

    def grad(x, y):
        return 2.0 * x, -2.0 * y

    def hess(x, y):
        return 2.0, 0.0, -2.0

    return _surface(
        name="saddle",
        title="Saddle",
        formula="f(x, y) = x^2 - y^2",
        description=(
            "The lecture's saddle point: grad f = 0 at the origin, a minimum along x and a "
            "maximum along y. From exactly y = 0 gradient descent converges to the saddle; from "
            "y = eps it leaves only after about log(1/eps) / log(1 + 2 eta) steps. Unbounded "
            "below."
        ),
        fns=(f, grad, hess),
        seeds=[],
        starts={"lab_off_axis": (1.0, 1e-3), "on_axis": (1.0, 0.0), "lightbench": (1e-6, 1e-6)},
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        tags={"non-convex", "saddle", "unbounded"},
    )


def _monkey_saddle():
    def f(x, y):
        return x**3 - 3 * x * y * y

    def grad(x, y):
        return 3 * x * x - 3 * y * y, -6 * x * y

    def hess(x, y):
        return 6 * x, -6 * y, -6 * x

    return _surface(
        name="monkey_saddle",
        title="Monkey saddle",
        formula="f(x, y) = x^3 - 3 x y^2",
        description=(
            "A degenerate saddle: gradient and Hessian both vanish at the origin, so the "
            "gradient shrinks like r^2 near it and gradient descent crawls (no curvature says "
            "which way is down). Three valleys go down to -infinity."
        ),
        fns=(f, grad, hess),
        seeds=[],
        starts={"lab": (1.0, 1e-3)},
        domain=((-1.5, 1.5), (-1.5, 1.5)),
        tags={"non-convex", "saddle", "unbounded"},
    )


_PLATEAU_S = 3.0


def _sigmoid(z):
    # 1 / (1 + exp(-z)) without overflow and with full relative accuracy in both tails
    return np.exp(-np.logaddexp(0.0, -z))


def _plateau():
    # f = sigma(z), z = s (x^2 + y^2 - 1): grad f = sigma'(z) 2 s (x, y),
    # H = sigma''(z) 4 s^2 (x, y)(x, y)^T + sigma'(z) 2 s I, sigma' = sigma(z) sigma(-z),
    # sigma'' = sigma' (sigma(-z) - sigma(z)).
    s = _PLATEAU_S

    def parts(x, y):
        z = s * (x * x + y * y - 1.0)
        p, m = _sigmoid(z), _sigmoid(-z)
        return p, m, p * m

    def f(x, y):
        return parts(x, y)[0]

    def grad(x, y):
        d1 = parts(x, y)[2]
        return 2 * s * d1 * x, 2 * s * d1 * y

    def hess(x, y):
        p, m, d1 = parts(x, y)
        d2 = d1 * (m - p) * 4 * s * s
        return d2 * x * x + 2 * s * d1, d2 * x * y, d2 * y * y + 2 * s * d1

    return _surface(
        name="plateau",
        title="Sigmoid plateau",
        formula="f(x, y) = 1 / (1 + exp(-3 (x^2 + y^2 - 1)))",
        description=(
            "A plateau (the sigmoid plateau of the LightBench suite, steepness 3): outside the "
            "unit circle f is almost 1 and |grad f| falls off like exp(-3 r^2) (3.5e-4 at the "
            "start (1.5, 1.5)), so plain gradient descent barely moves; momentum accumulates "
            "and Adam normalizes the tiny gradient. Minimum 1 / (1 + e^3) at the origin."
        ),
        fns=(f, grad, hess),
        seeds=[((0.0, 0.0), "global")],
        starts={"lightbench": (1.5, 1.5)},
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        tags={"non-convex", "plateau"},
    )


_TWO_WELL_TILT = 0.3


def _two_well():
    t = _TWO_WELL_TILT

    def f(x, y):
        return (x * x - 1) ** 2 + t * x + y * y

    def grad(x, y):
        return 4 * x * (x * x - 1) + t, 2.0 * y

    def hess(x, y):
        return 12 * x * x - 4, 0.0, 2.0

    return _surface(
        name="two_well",
        title="Two wells",
        formula="f(x, y) = (x^2 - 1)^2 + 0.3 x + y^2",
        description=(
            "A double well tilted by 0.3 x: the global minimum near x = -1 (f = -0.31) and a "
            "shallower local one near x = +1 (f = 0.29), separated by a ridge near x = 0.08. "
            "From the default start (1.8, 1.5) gradient descent (eta = 0.02) stops in the local "
            "well; momentum 0.9 carries over the ridge into the global one."
        ),
        fns=(f, grad, hess),
        seeds=[((-1.0, 0.0), "global"), ((1.0, 0.0), "local")],
        starts={"lab": (1.8, 1.5)},
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        tags={"non-convex", "multimodal", "local-minima"},
    )


# ---------------------------------------------------------------------------------------------
# The registry


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        _bowl(),
        quadratic(),
        _booth(),
        _matyas(),
        _rosenbrock(),
        _beale(),
        _himmelblau(),
        _six_hump_camel(),
        _rastrigin(),
        _ackley(),
        _styblinski_tang(),
        _saddle(),
        _monkey_saddle(),
        _plateau(),
        _two_well(),
    )
}


def get(name: str) -> Surface:
    """The registered surface called ``name`` (a key of :data:`SURFACES`, e.g. "rosenbrock").

    Raises ValueError listing the valid names for an unknown one, TypeError for a non-string.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {', '.join(SURFACES)}; got {name!r}")
    try:
        return SURFACES[name]
    except KeyError:
        raise ValueError(f"unknown surface {name!r}; valid: {', '.join(SURFACES)}") from None


def names(tag: str | None = None) -> list[str]:
    """Names of the registered surfaces in registry order, or only those carrying ``tag`` (one
    of :data:`TAGS`, e.g. "convex", "saddle"). Raises ValueError for an unknown tag."""
    if tag is None:
        return list(SURFACES)
    if tag not in TAGS:
        raise ValueError(f"unknown tag {tag!r}; valid: {', '.join(sorted(TAGS))}")
    return [name for name, surface in SURFACES.items() if tag in surface.tags]
