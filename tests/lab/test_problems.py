"""The data problems: analytic gradients against central differences, the lecture's formula,
closed-form optima, determinism and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from optimlab.lab import problems

NAMES = list(problems.PROBLEMS)
H = 1e-6  # central differences: error ~ h^2 f''' + eps f / h, about 1e-10 here


@pytest.fixture(scope="module")
def built():
    """Each problem once (the bundled datasets load once per module), and the relu MLP."""
    out = {name: problems.get(name) for name in NAMES}
    out["digits_mlp relu"] = problems.get("digits_mlp", activation="relu")
    return out


def _point(problem, seed=1):
    """A generic point: the initial parameters moved randomly (zeros would hide errors)."""
    rng = np.random.default_rng(seed)
    start = problem.init_params(0)
    return {k: np.asarray(v + 0.3 * rng.standard_normal(v.shape)) for k, v in start.items()}


def _coordinates(problem, rng, per_array=12):
    """(name, index) pairs: every coordinate of small arrays, a random sample of large ones."""
    out = []
    for name, shape in problem.shapes.items():
        size = int(np.prod(shape, dtype=int))
        flat = range(size) if size <= per_array else rng.choice(size, per_array, replace=False)
        out += [(name, np.unravel_index(int(i), shape)) for i in flat]
    return out


def _finite_difference(problem, params, rows, name, index):
    plus = {k: v.copy() for k, v in params.items()}
    minus = {k: v.copy() for k, v in params.items()}
    plus[name][index] += H
    minus[name][index] -= H
    return (problem.loss(plus, rows) - problem.loss(minus, rows)) / (2 * H)


@pytest.mark.parametrize("name", [*NAMES, "digits_mlp relu"])
@pytest.mark.parametrize("which", ["few rows", "all rows"])
def test_gradient_matches_central_differences(built, name, which):
    problem = built[name]
    rng = np.random.default_rng(7)
    rows = None if which == "all rows" else rng.choice(problem.n_samples, 5, replace=False)
    params = _point(problem)
    loss, grads = problem.loss_and_grad(params, rows)
    assert loss == pytest.approx(problem.loss(params, rows), rel=1e-14)
    assert set(grads) == set(params)
    for key in params:
        assert grads[key].shape == params[key].shape and grads[key].dtype == np.float64

    coords = _coordinates(problem, rng)
    analytic = np.array([grads[k][i] for k, i in coords])
    numeric = np.array([_finite_difference(problem, params, rows, k, i) for k, i in coords])
    scale = max(np.linalg.norm(analytic), 1e-3)
    assert np.linalg.norm(numeric - analytic) / scale < 1e-6

    # one directional derivative covers every coordinate at once
    direction = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    plus = {k: params[k] + H * direction[k] for k in params}
    minus = {k: params[k] - H * direction[k] for k in params}
    numeric_dir = (problem.loss(plus, rows) - problem.loss(minus, rows)) / (2 * H)
    analytic_dir = sum(float(np.sum(grads[k] * direction[k])) for k in params)
    assert numeric_dir == pytest.approx(analytic_dir, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_full_loss_is_the_mean_of_the_row_losses_and_gradients(built, name):
    """L(all rows) = mean_i l_i and grad L = mean_i grad l_i: why a mini-batch gradient is an
    unbiased estimate of the batch gradient."""
    problem = built[name]
    params = _point(problem)
    rows = np.arange(problem.n_samples)
    losses, grads = [], []
    for i in range(problem.n_samples):
        loss, grad = problem.loss_and_grad(params, rows[i : i + 1])
        losses.append(loss)
        grads.append(grad)
    full, full_grad = problem.loss_and_grad(params)
    assert full == pytest.approx(np.mean(losses), rel=1e-12)
    assert problem.loss(params, rows) == pytest.approx(full, rel=1e-12)
    for key in params:
        mean = np.mean([g[key] for g in grads], axis=0)
        np.testing.assert_allclose(full_grad[key], mean, rtol=1e-9, atol=1e-12)


def test_linear_gradient_is_the_lecture_formula(built):
    """dL/dw = mean(-2 (y - y_hat) x), dL/db = mean(-2 (y - y_hat)), written out row by row."""
    problem = built["linear"]
    assert problem.n_samples == 500 and problem.shapes == {"w": (), "b": ()}
    x, y = problem.X[:, 0], problem.y
    w, b = 0.7, -0.4
    rows = np.array([3, 141, 59, 265, 358, 97])
    loss, grads = problem.loss_and_grad({"w": np.array(w), "b": np.array(b)}, rows)
    dw = db = mse = 0.0
    for i in rows:
        y_hat = w * x[i] + b
        dw += -2 * (y[i] - y_hat) * x[i]
        db += -2 * (y[i] - y_hat)
        mse += (y[i] - y_hat) ** 2
    assert float(grads["w"]) == pytest.approx(dw / len(rows), rel=1e-13)
    assert float(grads["b"]) == pytest.approx(db / len(rows), rel=1e-13)
    assert loss == pytest.approx(mse / len(rows), rel=1e-13)


def test_linear_data_follow_the_documented_model():
    problem = problems.get("linear", noise=0.0, w_true=3.0, b_true=2.0)
    np.testing.assert_allclose(problem.y, 3.0 * problem.X[:, 0] + 2.0)
    assert problem.optimum == pytest.approx(0.0, abs=1e-20)
    assert float(problem.solution["w"]) == pytest.approx(3.0)
    assert float(problem.solution["b"]) == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["linear", "diabetes", "sparse"])
def test_least_squares_optimum(built, name):
    problem = built[name]
    design = np.column_stack([problem.X, np.ones(problem.n_samples)])
    coef = np.linalg.solve(design.T @ design, design.T @ problem.y)  # normal equations
    np.testing.assert_allclose(problem.solution["w"].reshape(-1), coef[:-1], rtol=1e-9, atol=1e-12)
    assert float(problem.solution["b"]) == pytest.approx(coef[-1], abs=1e-10)
    assert problem.loss(problem.solution) == pytest.approx(problem.optimum, rel=1e-12)
    _, grads = problem.loss_and_grad(problem.solution)
    assert max(np.max(np.abs(g)) for g in grads.values()) < 1e-10
    rng = np.random.default_rng(0)
    for _ in range(5):
        moved = {k: v + 1e-3 * rng.standard_normal(v.shape) for k, v in problem.solution.items()}
        assert problem.loss(moved) > problem.optimum
    if name == "linear":
        assert abs(float(problem.solution["w"]) - 3) < 0.2
        assert abs(float(problem.solution["b"]) - 2) < 0.1
    if name == "diabetes":  # standardized target: the optimum is 1 - R^2 of least squares
        assert 0.45 < problem.optimum < 0.52
        assert problem.metrics(problem.solution)["r2"] == pytest.approx(1 - problem.optimum)


def test_noisy_quadratic_spectrum_and_optimum():
    problem = problems.get("noisy_quadratic", dim=6, condition_number=1e3, noise=0.5, seed=3)
    eig = np.linalg.eigvalsh(problem.H)
    assert eig.max() == pytest.approx(1.0) and eig.max() / eig.min() == pytest.approx(1e3)
    assert problem.loss(problem.solution) == pytest.approx(problem.optimum, rel=1e-12)
    _, grads = problem.loss_and_grad(problem.solution)
    assert np.max(np.abs(grads["theta"])) < 1e-14
    metrics = problem.metrics(problem.init_params())
    assert metrics["excess_loss"] > 0 and metrics["distance"] > 0
    # a mini-batch gradient is noisy, the full gradient is not
    theta = problem.init_params()
    _, g_full = problem.loss_and_grad(theta)
    _, g_batch = problem.loss_and_grad(theta, np.arange(4))
    assert not np.allclose(g_full["theta"], g_batch["theta"])
    axis = problems.get("noisy_quadratic", dim=4, rotate=False)
    np.testing.assert_allclose(axis.H, np.diag(np.diag(axis.H)))


def test_sparse_feature_gets_a_tiny_batch_gradient(built):
    problem = built["sparse"]
    assert problem.feature_density[0] == 1.0
    assert problem.feature_density[1] == pytest.approx(0.05)
    dense, rare = problem.feature_gradient_magnitudes(problem.init_params())
    assert rare < dense / 5
    # on a batch made of the rows where the feature is present, it is not small at all
    present = np.flatnonzero(problem.X[:, 1])
    _, rare_rows = problem.feature_gradient_magnitudes(problem.init_params(), present)
    assert rare_rows > 5 * rare
    other = problems.get("sparse", density=0.2, n_samples=100)
    assert np.count_nonzero(other.X[:, 1]) == 20


def test_classification_metrics_and_stability(built):
    for name in ("breast_cancer", "digits_softmax", "digits_mlp"):
        problem = built[name]
        metrics = problem.metrics(problem.init_params(0))
        assert set(metrics) == {"loss", "accuracy"} and 0 <= metrics["accuracy"] <= 1
        assert problem.optimum is None
        huge = {k: 1e4 * v for k, v in _point(problem).items()}  # logits of order 1e4 and more
        loss, grads = problem.loss_and_grad(huge)
        assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())
    breast = built["breast_cancer"]
    assert breast.X.shape == (569, 30)
    np.testing.assert_allclose(breast.X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(breast.X.std(axis=0), 1)
    digits = built["digits_softmax"]
    assert digits.X.min() == 0 and digits.X.max() == 1 and digits.n_classes == 10
    assert digits.loss(digits.init_params()) == pytest.approx(np.log(10))


def test_mlp_shapes_and_initialization():
    tanh = problems.get("digits_mlp")
    assert tanh.shapes == {"W1": (64, 32), "b1": (32,), "W2": (32, 10), "b2": (10,)}
    params = tanh.init_params(0)
    limit = np.sqrt(6 / (64 + 32))
    assert np.all(np.abs(params["W1"]) <= limit) and np.abs(params["W1"]).max() > 0.9 * limit
    assert not params["b1"].any() and not params["b2"].any()
    relu = problems.get("digits_mlp", activation="relu", hidden=16)
    w1 = relu.init_params(0)["W1"]
    assert w1.shape == (64, 16) and w1.std() == pytest.approx(np.sqrt(2 / 64), rel=0.1)


@pytest.mark.parametrize("name", NAMES)
def test_determinism(name):
    a, b = problems.get(name), problems.get(name)
    for attribute in ("X", "y", "labels", "centers"):
        if hasattr(a, attribute):
            np.testing.assert_array_equal(getattr(a, attribute), getattr(b, attribute))
    pa, pb = a.init_params(5), b.init_params(5)
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key])
    assert a.name == name and a.title and len(a.description) > 40


def test_seeds_change_data_and_initialization():
    assert not np.array_equal(problems.get("linear", seed=0).y, problems.get("linear", seed=1).y)
    mlp = problems.get("digits_mlp")
    assert not np.array_equal(mlp.init_params(0)["W1"], mlp.init_params(1)["W1"])
    quad = problems.get("noisy_quadratic", seed=0), problems.get("noisy_quadratic", seed=1)
    assert not np.array_equal(quad[0].centers, quad[1].centers)


def test_data_are_read_only(built):
    with pytest.raises(ValueError):
        built["linear"].X[0, 0] = 1.0
    with pytest.raises(ValueError):
        built["digits_mlp"].labels[0] = 3


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"unknown problem 'mnist'.*linear.*noisy_quadratic"):
        problems.get("mnist")
    with pytest.raises(TypeError, match=r"'dims'.*valid ones: dim"):
        problems.get("noisy_quadratic", dims=3)
    with pytest.raises(TypeError, match="valid ones: none"):
        problems.get("breast_cancer", seed=1)
    with pytest.raises(ValueError, match=r"n_samples must be an integer >= 2, got 1"):
        problems.get("linear", n_samples=1)
    with pytest.raises(ValueError, match=r"density must be a float in \(0, 1\], got 1.5"):
        problems.get("sparse", density=1.5)
    with pytest.raises(ValueError, match=r"condition_number must be a float >= 1"):
        problems.get("noisy_quadratic", condition_number=0.5)
    with pytest.raises(ValueError, match=r"activation must be one of 'tanh', 'relu'"):
        problems.get("digits_mlp", activation="sigmoid")
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got -1"):
        problems.get("linear", seed=-1)
    with pytest.raises(ValueError, match=r"w_true must be two finite floats"):
        problems.get("sparse", w_true=(1.0, 2.0, 3.0))

    problem = problems.get("linear")
    params = problem.init_params()
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 499\].*got values from 0 to 500"):
        problem.loss(params, np.array([0, 500]))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        problem.loss(params, np.array([], dtype=int))
    with pytest.raises(TypeError, match="rows must be integer row indices, got dtype float64"):
        problem.loss(params, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"must have the keys \['b', 'w'\], got \['w'\]"):
        problem.loss({"w": np.zeros(())})
    with pytest.raises(ValueError, match=r"params\['w'\].*shape \(\), got \(2,\)"):
        problem.loss({"w": np.zeros(2), "b": np.zeros(())})
    with pytest.raises(TypeError, match="params must be a mapping"):
        problem.loss([0.0, 0.0])
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        problem.init_params(-3)
