"""The 2-D test surfaces: analytic derivatives against finite differences, the listed minima,
vectorization, the quadratic ravine's spectrum, argument checks and the stories the lab tells
with them (two wells, the 2 / kappa learning-rate limit, the plateau)."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimlab.lab import surfaces
from optimlab.lab.surfaces import SURFACES, TAGS, Minimum, Surface

EXPECTED_ORDER = [
    "bowl",
    "ravine",
    "booth",
    "matyas",
    "rosenbrock",
    "beale",
    "himmelblau",
    "six_hump_camel",
    "rastrigin",
    "ackley",
    "styblinski_tang",
    "saddle",
    "monkey_saddle",
    "plateau",
    "two_well",
]
ALL = list(SURFACES.values())
BOUNDED = [s for s in ALL if s.minima]
IDS = [s.name for s in ALL]


def random_points(surface: Surface, n: int, seed: int = 0) -> np.ndarray:
    """``n`` uniform points of the surface's plotting domain, shape (n, 2)."""
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = surface.domain
    return np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])


def five_point(fun, points: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central differences of order h^4 of ``fun`` in x and y: shape fun(points).shape + (2,)."""
    columns = []
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        columns.append(
            (-fun(points + 2 * e) + 8 * fun(points + e) - 8 * fun(points - e) + fun(points - 2 * e))
            / (12 * h)
        )
    return np.stack(columns, axis=-1)


def gradient_descent(surface, start, lr, steps, momentum=0.0):
    """Heavy-ball gradient descent, v <- momentum v - lr grad f(w), w <- w + v."""
    w = np.array(start, float)
    v = np.zeros(2)
    for _ in range(steps):
        v = momentum * v - lr * surface.gradient(w)
        w = w + v
    return w


# --- the registry -------------------------------------------------------------------------------


def test_registry_order_and_lookup():
    assert list(SURFACES) == EXPECTED_ORDER
    assert surfaces.names() == EXPECTED_ORDER
    for name, surface in SURFACES.items():
        assert surfaces.get(name) is surface
        assert surface.name == name


def test_unknown_name_lists_every_valid_name():
    with pytest.raises(ValueError, match="unknown surface 'nope'") as info:
        surfaces.get("nope")
    assert "valid: " + ", ".join(EXPECTED_ORDER) in str(info.value)
    with pytest.raises(TypeError, match="name must be a str"):
        surfaces.get(3)


def test_names_by_tag():
    assert surfaces.names("convex") == ["bowl", "ravine", "booth", "matyas"]
    assert surfaces.names("unbounded") == ["saddle", "monkey_saddle"]
    assert "rastrigin" in surfaces.names("local-minima")
    with pytest.raises(ValueError, match="unknown tag 'bumpy'; valid: .*convex"):
        surfaces.names("bumpy")


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_metadata_is_consistent(surface):
    assert surface.tags <= TAGS
    assert len(surface.tags & {"convex", "non-convex"}) == 1
    assert surface.title and surface.formula.startswith("f(x, y) = ") and surface.description
    # unbounded <=> no minima <=> no global minimum <=> no log-spaced contour levels
    unbounded = "unbounded" in surface.tags
    assert unbounded == (surface.minima == ()) == (surface.global_minimum is None)
    assert surface.log_levels == (not unbounded)
    (x0, x1), (y0, y1) = surface.domain
    assert x0 < x1 and y0 < y1
    inside = [m.point for m in surface.minima] + list(surface.starts.values())
    for x, y in inside:
        assert x0 <= x <= x1 and y0 <= y <= y1, (x, y)
    start = surface.default_start
    assert start.shape == (2,) and start.dtype == np.float64
    assert tuple(start) == next(iter(surface.starts.values()))
    start[0] = 99.0  # a fresh copy every time
    assert surface.default_start[0] != 99.0


def test_surfaces_are_frozen_and_hashable():
    surface = surfaces.get("bowl")
    with pytest.raises(dataclasses.FrozenInstanceError):
        surface.name = "other"
    assert len({surface, surfaces.get("bowl"), surfaces.get("booth")}) == 2
    with pytest.raises(ValueError, match="kind must be one of"):
        Minimum(point=(0.0, 0.0), value=0.0, kind="best")


# --- derivatives --------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_gradient_matches_finite_differences(surface):
    points = random_points(surface, 300, seed=1)
    analytic = surface.gradient(points)
    numeric = five_point(surface.value, points)
    # rounding of the stencil is about eps |f| / h, far below 1e-10 (1 + |f|)
    scale = 1e-6 * np.abs(analytic) + 1e-10 * (1 + np.abs(surface.value(points)))[:, None]
    assert np.all(np.abs(analytic - numeric) <= scale)


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_hessian_matches_finite_differences_of_the_gradient(surface):
    points = random_points(surface, 300, seed=2)
    analytic = surface.hessian(points)
    numeric = five_point(surface.gradient, points)  # [..., i, j] = d(df/dx_i)/dx_j
    g = np.abs(surface.gradient(points)).max(axis=1)
    scale = 1e-6 * np.abs(analytic) + 1e-10 * (1 + g)[:, None, None]
    assert np.all(np.abs(analytic - numeric) <= scale)
    np.testing.assert_array_equal(analytic, np.swapaxes(analytic, -1, -2))


def test_ackley_gradient_is_finite_at_the_kink():
    ackley = surfaces.get("ackley")
    np.testing.assert_array_equal(ackley.gradient([0.0, 0.0]), [0.0, 0.0])
    near = ackley.gradient([[1e-300, 0.0], [0.0, -1e-12], [3e-9, 4e-9]])
    assert np.all(np.isfinite(near)) and np.all(np.isfinite(ackley.hessian([0.0, 0.0])))
    # the cone's slope: |grad| tends to 20 * 0.2 / sqrt(2) = 2.83 from every side
    np.testing.assert_allclose(np.linalg.norm(near[2]), 2 * math.sqrt(2), rtol=1e-6)


# --- minima -------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", BOUNDED, ids=[s.name for s in BOUNDED])
def test_listed_minima_are_minima(surface):
    kinds = [m.kind for m in surface.minima]
    assert kinds == sorted(kinds, key=["global", "local"].index)  # global ones first
    f_min = surface.global_minimum.value
    for m in surface.minima:
        point = np.array(m.point)
        assert surface.value(point) == m.value
        scale = 1.0 + np.abs(surface.hessian(point)).max()
        assert np.linalg.norm(surface.gradient(point)) < 1e-12 * scale
        assert np.linalg.eigvalsh(surface.hessian(point))[0] > 0
        if m.kind == "global":
            assert m.value == pytest.approx(f_min, abs=1e-12)
        else:
            assert m.value > f_min + 1e-3
    points = np.array([m.point for m in surface.minima])
    gaps = np.linalg.norm(points[:, None] - points[None, :], axis=-1) + np.eye(len(points))
    assert gaps.min() > 0.1  # no minimum listed twice


@pytest.mark.parametrize("surface", BOUNDED, ids=[s.name for s in BOUNDED])
def test_global_minimum_is_lowest_in_the_domain(surface):
    values = surface.value(random_points(surface, 20_000, seed=3))
    assert values.min() >= surface.global_minimum.value


def test_known_minima():
    def points(name):
        return [m.point for m in surfaces.get(name).minima]

    assert points("rosenbrock") == [(1.0, 1.0)] and points("booth") == [(1.0, 3.0)]
    assert points("beale") == [(3.0, 0.5)]
    himmelblau = np.array(points("himmelblau"))
    np.testing.assert_allclose(
        himmelblau,
        [[3, 2], [-2.805118, 3.131312], [-3.779310, -3.283186], [3.584428, -1.848126]],
        atol=1e-6,
    )
    camel = surfaces.get("six_hump_camel")
    assert [m.kind for m in camel.minima].count("global") == 2
    assert camel.global_minimum.value == pytest.approx(-1.0316284535, abs=1e-10)
    tang = surfaces.get("styblinski_tang")
    assert tang.global_minimum.point == pytest.approx((-2.903534028, -2.903534028), abs=1e-9)
    assert tang.global_minimum.value == pytest.approx(-2 * 39.16616570, abs=1e-7)
    assert len(tang.minima) == 4
    assert surfaces.get("plateau").global_minimum.value == pytest.approx(1 / (1 + math.e**3))
    assert surfaces.get("ackley").global_minimum.value == 0.0


def test_newton_from_a_grid_finds_no_unlisted_minimum():
    """Every local minimum in the domain is listed, except on Rastrigin and Ackley (one near
    every integer point; only the origin's neighbourhood is listed)."""
    for surface in BOUNDED:
        if surface.name in ("rastrigin", "ackley"):
            continue
        (x0, x1), (y0, y1) = surface.domain
        grid = np.stack(np.meshgrid(np.linspace(x0, x1, 25), np.linspace(y0, y1, 25)), axis=-1)
        p = grid.reshape(-1, 2)
        with np.errstate(all="ignore"):
            for _ in range(60):
                p = p - np.linalg.solve(surface.hessian(p), surface.gradient(p)[..., None])[..., 0]
            p = p[np.all(np.isfinite(p), axis=1)]
            p = p[(p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)]
            p = p[np.linalg.norm(surface.gradient(p), axis=1) < 1e-8]
            p = p[np.linalg.eigvalsh(surface.hessian(p))[:, 0] > 0]
        listed = np.array([m.point for m in surface.minima])
        distance = np.linalg.norm(p[:, None, :] - listed[None, :, :], axis=-1).min(axis=1)
        assert distance.max() < 1e-6, surface.name
        assert len(p) > 0


# --- vectorization and input checks -------------------------------------------------------------


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_batches_equal_pointwise_evaluation(surface):
    batch = random_points(surface, 12, seed=4).reshape(3, 4, 2)
    values, grads, hessians = surface.value(batch), surface.gradient(batch), surface.hessian(batch)
    assert values.shape == (3, 4) and grads.shape == (3, 4, 2) and hessians.shape == (3, 4, 2, 2)
    assert values.dtype == grads.dtype == hessians.dtype == np.float64
    for i in range(3):
        for j in range(4):
            point = [float(batch[i, j, 0]), float(batch[i, j, 1])]
            assert surface.value(point).shape == ()
            np.testing.assert_allclose(values[i, j], surface(point), rtol=1e-14, atol=1e-14)
            np.testing.assert_allclose(grads[i, j], surface.gradient(point), rtol=1e-14, atol=1e-14)
            np.testing.assert_allclose(
                hessians[i, j], surface.hessian(point), rtol=1e-14, atol=1e-14
            )


def test_input_checks_name_xy():
    bowl = surfaces.get("bowl")
    for bad in ([1.0, 2.0, 3.0], np.zeros((4, 3)), 1.0):
        shape = np.shape(bad)
        for method in (bowl.value, bowl.gradient, bowl.hessian):
            with pytest.raises(ValueError, match=rf"xy must have shape \(\.\.\., 2\).*{shape}"):
                method(bad)
    with pytest.raises(TypeError, match="xy must be an array-like of real numbers"):
        bowl.value(["a", "b"])
    with pytest.raises(TypeError, match="xy must be"):
        bowl.value(np.array([True, False]))
    assert surfaces.get("rosenbrock").value([1, 1]) == 0.0  # integers are fine
    assert bowl.value(np.zeros((0, 2))).shape == (0,)
    with np.errstate(all="ignore"):
        assert np.isnan(surfaces.get("ackley").value([np.nan, 0.0]))
        assert np.all(np.isnan(surfaces.get("rosenbrock").gradient([np.nan, 1.0])))


# --- the quadratic ravine -----------------------------------------------------------------------


@pytest.mark.parametrize("kappa", [1.0, 10.0, 100.0, 1000.0])
def test_quadratic_hessian_has_eigenvalues_1_and_kappa(kappa):
    surface = surfaces.quadratic(condition_number=kappa, name=f"quadratic_{kappa:g}")
    assert surface.name == f"quadratic_{kappa:g}"
    eigenvalues = np.linalg.eigvalsh(surface.hessian(random_points(surface, 5)))
    np.testing.assert_allclose(eigenvalues, np.broadcast_to([1.0, kappa], (5, 2)), rtol=1e-12)
    assert ("ill-conditioned" in surface.tags) == (kappa >= 10)


def test_ravine_is_the_default_quadratic():
    ravine = surfaces.get("ravine")
    other = surfaces.quadratic()
    points = random_points(ravine, 50)
    np.testing.assert_array_equal(ravine.value(points), other.value(points))
    # angle pi/4: the floor (curvature 1) runs along y = x, the steep wall along y = -x
    np.testing.assert_allclose(ravine.value([1.0, 1.0]), 1.0)
    np.testing.assert_allclose(ravine.value([1.0, -1.0]), 100.0)


@given(
    kappa=st.floats(1.0, 1e4),
    angle=st.floats(-2 * math.pi, 2 * math.pi),
    x=st.floats(-10, 10),
    y=st.floats(-10, 10),
)
def test_quadratic_is_half_p_h_p(kappa, angle, x, y):
    surface = surfaces.quadratic(kappa, angle, name="q")
    p = np.array([x, y])
    h = surface.hessian(p)
    np.testing.assert_allclose(np.linalg.eigvalsh(h), [1.0, kappa], rtol=1e-9, atol=1e-9 * kappa)
    np.testing.assert_allclose(surface.gradient(p), h @ p, rtol=1e-9, atol=1e-9 * kappa)
    np.testing.assert_allclose(surface.value(p), 0.5 * p @ h @ p, rtol=1e-9, atol=1e-9 * kappa)


def test_quadratic_checks_its_arguments():
    with pytest.raises(ValueError, match=r"condition_number must be a float >= 1, got 0.5"):
        surfaces.quadratic(0.5)
    with pytest.raises(ValueError, match="condition_number must be a finite float"):
        surfaces.quadratic(math.inf)
    with pytest.raises(TypeError, match="condition_number must be a float"):
        surfaces.quadratic("100")
    with pytest.raises(ValueError, match="angle must be a finite float"):
        surfaces.quadratic(100.0, math.nan)
    with pytest.raises(TypeError, match="name must be a non-empty str, got ''"):
        surfaces.quadratic(name="")


def test_gradient_descent_is_stable_exactly_below_2_over_kappa():
    ravine = surfaces.get("ravine")  # curvatures 1 and 100: 2 / kappa = 0.02
    below = gradient_descent(ravine, ravine.default_start, 0.0199, 3000)
    above = gradient_descent(ravine, ravine.default_start, 0.0201, 3000)
    assert ravine.value(below) < 1e-12
    assert ravine.value(above) > 1e3


# --- the shapes the lab relies on ---------------------------------------------------------------


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_convex_tag_matches_the_hessian(surface):
    smallest = np.linalg.eigvalsh(surface.hessian(random_points(surface, 2000, seed=5)))[:, 0]
    if "convex" in surface.tags:
        assert smallest.min() >= -1e-12
    else:
        assert smallest.min() < 0


def test_two_well_traps_gradient_descent_but_not_momentum():
    well = surfaces.get("two_well")
    local = next(m for m in well.minima if m.kind == "local")
    plain = gradient_descent(well, well.default_start, 0.02, 1000)
    heavy = gradient_descent(well, well.default_start, 0.02, 1000, momentum=0.9)
    np.testing.assert_allclose(plain, local.point, atol=1e-6)
    np.testing.assert_allclose(heavy, well.global_minimum.point, atol=1e-6)
    assert well.global_minimum.value < local.value


def test_saddles_and_plateau():
    saddle, monkey = surfaces.get("saddle"), surfaces.get("monkey_saddle")
    np.testing.assert_array_equal(saddle.hessian([0.0, 0.0]), [[2.0, 0.0], [0.0, -2.0]])
    np.testing.assert_array_equal(monkey.hessian([0.0, 0.0]), np.zeros((2, 2)))
    np.testing.assert_array_equal(monkey.gradient([0.0, 0.0]), [0.0, 0.0])
    # the default saddle start lies just off the symmetry line y = 0, which GD never leaves
    x, y = saddle.default_start
    assert x == 1.0 and 0 < abs(y) <= 1e-2
    assert gradient_descent(saddle, (1.0, 0.0), 0.1, 200)[1] == 0.0
    plateau = surfaces.get("plateau")
    g = np.linalg.norm(plateau.gradient(plateau.default_start))
    assert 1e-5 < g < 1e-3  # nearly, but not exactly, flat
    assert np.linalg.norm(plateau.gradient([2.0, 2.0])) > 0.0
