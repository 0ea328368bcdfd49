"""Data problems with analytic gradients: what :func:`optimlab.lab.training.fit` trains.

Every problem is a mean loss over ``n_samples`` rows (examples), ``L(theta) = (1/n) sum_i
l_i(theta)``, so that a mini-batch of rows ``B`` gives the stochastic gradient
``(1/|B|) sum_{i in B} grad l_i(theta)`` of the lecture's batch / stochastic / mini-batch
gradient descent. All arithmetic is NumPy float64; the gradients are written out by hand (no
finite differences) and checked against central differences in ``tests/lab/test_problems.py``.

Problems (``get(name, **kwargs)``; ``PROBLEMS`` lists them):

``linear``
    The lecture's 500-row linear regression with one feature, ``y = w* x + b* + noise``, MSE
    loss; two parameters, so the path of (w, b) is a curve on the contour plot of the loss.
``sparse``
    Linear regression with a dense feature and a sparse one (non-zero in ~5% of rows): batch
    GD gives the sparse weight a tiny gradient, Adagrad's motivation.
``breast_cancer``
    Logistic regression on scikit-learn's bundled breast-cancer data (569 x 30, standardized).
``digits_softmax``
    Softmax regression on scikit-learn's bundled 8x8 digits (1797 x 64, scaled to [0, 1]).
``digits_mlp``
    A 64-32-10 multilayer perceptron (tanh by default) on the same digits, backpropagation.
``diabetes``
    Linear regression on scikit-learn's bundled diabetes data (442 x 10, standardized).
``matrix_regression``, ``digits_cnn``
    A matrix least-squares problem and a small CNN on the digits (:mod:`.matrix_problems`).
``noisy_quadratic``
    ``f(theta) = mean_i 0.5 (theta - c_i)^T H (theta - c_i)`` with a chosen eigenvalue spectrum
    of ``H``: each row is one sample ``c_i``, so a mini-batch gives a noisy gradient (DeepOBS's
    ``quadratic_deep``, Schneider et al. 2019, reimplemented in NumPy).

Data come only from seeded NumPy generators and scikit-learn's bundled loaders (no download);
the same arguments give the same data and the same initial parameters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._validation import check_bool, check_choice, check_float, check_int

__all__ = [
    "Problem",
    "LinearRegression",
    "SparseRegression",
    "LogisticRegression",
    "SoftmaxRegression",
    "MLPClassifier",
    "NoisyQuadratic",
    "PROBLEMS",
    "get",
    "linear",
    "sparse",
    "breast_cancer",
    "digits_softmax",
    "digits_mlp",
    "diabetes",
    "noisy_quadratic",
    "matrix_regression",
    "digits_cnn",
]


# ---------------------------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------------------------


class Problem:
    """A mean loss over ``n_samples`` rows with an analytic gradient.

    ``L(theta; B) = (1/|B|) sum_{i in B} l_i(theta)`` for a set of rows ``B`` (all rows when
    ``rows`` is None); :meth:`loss_and_grad` returns ``L`` and ``grad L`` with the same keys and
    shapes as the parameters. Subclasses implement ``_evaluate``.

    Attributes: ``name``, ``title``, ``description`` (what it teaches in the lecture),
    ``n_samples``, ``shapes`` (parameter name -> shape), ``optimum`` (the smallest full-data
    loss where it has a closed form, else None) and ``solution`` (the parameters reaching it,
    else None).
    """

    name: str = ""
    title: str = ""
    description: str = ""
    n_samples: int = 0
    optimum: float | None = None
    solution: dict[str, np.ndarray] | None = None
    shapes: dict[str, tuple[int, ...]] = {}

    # -- the interface --------------------------------------------------------------------

    def init_params(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Initial parameters (fresh float64 arrays), deterministic given ``seed``."""
        seed = _check_seed(seed)
        return {k: np.array(v, dtype=np.float64) for k, v in self._init(seed).items()}

    def loss(self, params: Mapping[str, np.ndarray], rows: np.ndarray | None = None) -> float:
        """The mean loss ``(1/|B|) sum_{i in B} l_i(theta)`` over ``rows`` (None: all rows)."""
        value, _ = self._evaluate(self._check_params(params), self._check_rows(rows), False)
        return float(value)

    def loss_and_grad(
        self, params: Mapping[str, np.ndarray], rows: np.ndarray | None = None
    ) -> tuple[float, dict[str, np.ndarray]]:
        """The mean loss over ``rows`` (None: all rows) and its gradient: a dict with the keys
        and shapes of ``params`` (float64 arrays)."""
        value, grads = self._evaluate(self._check_params(params), self._check_rows(rows), True)
        return float(value), {k: np.asarray(grads[k], np.float64) for k in self.shapes}

    def metrics(self, params: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Full-data metrics: ``loss`` always, plus what fits the problem (``accuracy``,
        ``rmse``, ``excess_loss`` = loss - optimum, ...)."""
        loss = self.loss(params)
        out = {"loss": loss}
        if self.optimum is not None:
            out["excess_loss"] = loss - self.optimum
        return out

    # -- for subclasses -------------------------------------------------------------------

    def _init(self, seed: int) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _evaluate(self, p: dict[str, np.ndarray], rows: np.ndarray | None, grad: bool):
        """(mean loss, gradient dict or None) for checked parameters and rows."""
        raise NotImplementedError  # pragma: no cover - abstract

    # -- checks ---------------------------------------------------------------------------

    def _check_params(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not isinstance(params, Mapping):
            raise TypeError(
                f"params must be a mapping name -> array with keys {sorted(self.shapes)}, "
                f"got {type(params).__name__}"
            )
        if set(params) != set(self.shapes):
            raise ValueError(
                f"params of problem {self.name!r} must have the keys {sorted(self.shapes)}, "
                f"got {sorted(params)}"
            )
        out = {}
        for key, shape in self.shapes.items():
            value = np.asarray(params[key], dtype=np.float64)
            if value.shape != shape:
                raise ValueError(
                    f"params[{key!r}] of problem {self.name!r} must have shape {shape}, "
                    f"got {value.shape}"
                )
            out[key] = value
        return out

    def _check_rows(self, rows: Any) -> np.ndarray | None:
        if rows is None:
            return None
        index = np.asarray(rows)
        if index.ndim != 1 or index.size == 0:
            raise ValueError(
                f"rows must be None or a non-empty 1-D array of row indices, got shape "
                f"{index.shape}"
            )
        if index.dtype.kind not in "iu":
            raise TypeError(f"rows must be integer row indices, got dtype {index.dtype}")
        low, high = int(index.min()), int(index.max())
        if low < 0 or high >= self.n_samples:
            raise ValueError(
                f"rows must lie in [0, {self.n_samples - 1}] (n_samples={self.n_samples}), "
                f"got values from {low} to {high}"
            )
        return index

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}{list(v)}" for k, v in self.shapes.items())
        return f"<Problem {self.name!r}: {self.n_samples} rows, params {sizes}>"


def _check_seed(seed: Any) -> int:
    return check_int("seed", seed, 0)


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, order="C")  # a copy; 0-d stays 0-d
    array.setflags(write=False)
    return array


def _standardize(x: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` per column (a constant column stays 0)."""
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - logsumexp(z)`` per row, computed as ``z - max - log sum exp(z - max)`` (stable)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _cross_entropy(z: np.ndarray, labels: np.ndarray, grad: bool):
    """Mean cross-entropy ``-(1/m) sum_i log softmax(z_i)[y_i]`` and ``dL/dz = (softmax(z) -
    onehot(y)) / m``."""
    m = z.shape[0]
    log_p = _log_softmax(z)
    picked = np.arange(m)
    loss = -np.mean(log_p[picked, labels])
    if not grad:
        return loss, None
    dz = np.exp(log_p)
    dz[picked, labels] -= 1.0
    return loss, dz / m


# ---------------------------------------------------------------------------------------------
# Regression
# ---------------------------------------------------------------------------------------------


class LinearRegression(Problem):
    """Linear regression with the mean squared error (the lecture's loss).

    ``y_hat_i = w . x_i + b``; ``L = (1/m) sum_i (y_i - y_hat_i)^2``;
    ``dL/dw = (1/m) sum_i -2 (y_i - y_hat_i) x_i``, ``dL/db = (1/m) sum_i -2 (y_i - y_hat_i)``
    (the lecture's gradient, averaged over the batch). The optimum is the least-squares
    solution of ``[X 1] [w; b] = y`` (``numpy.linalg.lstsq``). Parameters start at 0.

    ``scalar_weight=True`` (one feature) makes ``w`` a 0-d array, so that (w, b) is a point of
    the plane.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        name: str,
        title: str,
        description: str,
        scalar_weight: bool = False,
    ) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        self.X = _readonly(x)
        self.y = _readonly(np.asarray(y, dtype=np.float64).reshape(-1))
        self.name, self.title, self.description = name, title, description
        self.n_samples, self.n_features = self.X.shape
        self._scalar = bool(scalar_weight) and self.n_features == 1
        self.shapes = {"w": () if self._scalar else (self.n_features,), "b": ()}
        design = np.column_stack([self.X, np.ones(self.n_samples)])
        coef = np.linalg.lstsq(design, self.y, rcond=None)[0]
        self.solution = {
            "w": _readonly(coef[:-1].reshape(self.shapes["w"])),
            "b": _readonly(np.array(coef[-1])),
        }
        self.optimum = float(np.mean((self.y - design @ coef) ** 2))

    def _init(self, seed: int) -> dict[str, np.ndarray]:
        return {"w": np.zeros(self.shapes["w"]), "b": np.zeros(())}

    def _evaluate(self, p, rows, grad):
        x = self.X if rows is None else self.X[rows]
        y = self.y if rows is None else self.y[rows]
        residual = y - (x @ p["w"].reshape(-1) + p["b"])  # y - y_hat
        loss = np.mean(residual * residual)
        if not grad:
            return loss, None
        d = -2.0 * residual / residual.size  # dL/dy_hat_i, the 1/m of the mean included
        return loss, {"w": (x.T @ d).reshape(self.shapes["w"]), "b": d.sum()}

    def metrics(self, params):
        """``loss`` (MSE), ``rmse``, ``r2`` = 1 - MSE / Var(y), ``excess_loss`` = loss -
        optimum."""
        out = super().metrics(params)
        out["rmse"] = float(np.sqrt(out["loss"]))
        out["r2"] = float(1.0 - out["loss"] / np.var(self.y))
        return out


class SparseRegression(LinearRegression):
    """The lecture's sparse column: ``y = w*_0 x_dense + w*_1 x_sparse + b* + noise`` with
    ``x_sparse`` non-zero (= 1) in a fraction ``density`` of the rows.

    Under batch GD, ``dL/dw_1 = (1/n) sum_i -2 (y_i - y_hat_i) x_sparse_i`` sums over the few
    rows where the feature is present, divided by all n rows, so the sparse weight gets a
    gradient about ``density`` times smaller than the dense weight and learns slowly with one
    global learning rate: the reason for Adagrad's per-parameter rates (Duchi, Hazan & Singer
    2011). ``feature_density`` holds each feature's fraction of non-zero rows;
    :meth:`feature_gradient_magnitudes` gives ``|dL/dw_j|`` per feature.
    """

    def __init__(self, x, y, *, density: float, **kwargs) -> None:
        super().__init__(x, y, **kwargs)
        self.feature_density = _readonly(np.mean(self.X != 0, axis=0))
        self.density = float(density)

    def feature_gradient_magnitudes(
        self, params: Mapping[str, np.ndarray], rows: np.ndarray | None = None
    ) -> np.ndarray:
        """``|dL/dw_j|`` per feature j (dense first, sparse second) over ``rows`` (None: all
        rows, i.e. what batch GD sees)."""
        _, grads = self.loss_and_grad(params, rows)
        return np.abs(grads["w"])


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------


class LogisticRegression(Problem):
    """Binary logistic regression with the mean cross-entropy.

    ``z_i = w . x_i + b``, ``p_i = sigmoid(z_i)``; ``L = (1/m) sum_i [log(1 + e^{z_i}) - y_i
    z_i]`` (= ``-y log p - (1 - y) log(1 - p)``, computed with ``logaddexp`` so that it never
    overflows); ``dL/dw = (1/m) sum_i (p_i - y_i) x_i``, ``dL/db = (1/m) sum_i (p_i - y_i)``
    (e.g. Bishop, *Pattern Recognition and Machine Learning*, eq. 4.91). Parameters start at 0.
    """

    def __init__(self, x, y, *, name: str, title: str, description: str) -> None:
        self.X = _readonly(x)
        self.y = _readonly(np.asarray(y).reshape(-1))
        self.name, self.title, self.description = name, title, description
        self.n_samples, self.n_features = self.X.shape
        self.shapes = {"w": (self.n_features,), "b": ()}

    def _init(self, seed: int) -> dict[str, np.ndarray]:
        return {"w": np.zeros(self.n_features), "b": np.zeros(())}

    def _logits(self, p, rows):
        x = self.X if rows is None else self.X[rows]
        return x, x @ p["w"] + p["b"]

    def _evaluate(self, p, rows, grad):
        x, z = self._logits(p, rows)
        y = self.y if rows is None else self.y[rows]
        loss = np.mean(np.logaddexp(0.0, z) - y * z)
        if not grad:
            return loss, None
        # sigmoid(z) = 0.5 (1 + tanh(z / 2)): stable for every z
        d = (0.5 * (1.0 + np.tanh(0.5 * z)) - y) / z.size
        return loss, {"w": x.T @ d, "b": d.sum()}

    def metrics(self, params):
        """``loss`` (mean cross-entropy) and ``accuracy`` (predict 1 where z > 0)."""
        out = super().metrics(params)
        _, z = self._logits(self._check_params(params), None)
        out["accuracy"] = float(np.mean((z > 0) == (self.y > 0.5)))
        return out


class _Classifier(Problem):
    """Shared by the softmax models: integer labels 0..k-1 and an accuracy metric."""

    def _set_data(self, x, labels, name, title, description) -> None:
        self.X = _readonly(x)
        labels = np.asarray(labels).reshape(-1).astype(np.intp)
        labels.setflags(write=False)
        self.labels = labels
        self.name, self.title, self.description = name, title, description
        self.n_samples, self.n_features = self.X.shape
        self.n_classes = int(labels.max()) + 1

    def _logits(self, p, rows):  # pragma: no cover - abstract
        raise NotImplementedError

    def metrics(self, params):
        """``loss`` (mean cross-entropy) and ``accuracy`` (argmax of the logits)."""
        out = super().metrics(params)
        z = self._logits(self._check_params(params), None)
        out["accuracy"] = float(np.mean(np.argmax(z, axis=1) == self.labels))
        return out


class SoftmaxRegression(_Classifier):
    """Multinomial logistic (softmax) regression with the mean cross-entropy.

    ``z_i = x_i W + b``; ``L = (1/m) sum_i [logsumexp(z_i) - z_i[y_i]]``;
    ``dL/dz_i = (softmax(z_i) - onehot(y_i)) / m``, ``dL/dW = X^T dL/dz``, ``dL/db = sum_i
    dL/dz_i`` (Bishop, eq. 4.109). Parameters start at 0.
    """

    def __init__(self, x, labels, *, name: str, title: str, description: str) -> None:
        self._set_data(x, labels, name, title, description)
        self.shapes = {"W": (self.n_features, self.n_classes), "b": (self.n_classes,)}

    def _init(self, seed: int) -> dict[str, np.ndarray]:
        return {k: np.zeros(s) for k, s in self.shapes.items()}

    def _logits(self, p, rows):
        x = self.X if rows is None else self.X[rows]
        return x @ p["W"] + p["b"]

    def _evaluate(self, p, rows, grad):
        x = self.X if rows is None else self.X[rows]
        labels = self.labels if rows is None else self.labels[rows]
        loss, dz = _cross_entropy(x @ p["W"] + p["b"], labels, grad)
        if not grad:
            return loss, None
        return loss, {"W": x.T @ dz, "b": dz.sum(axis=0)}


ACTIVATIONS = ("tanh", "relu")


class MLPClassifier(_Classifier):
    """A one-hidden-layer perceptron ``d-h-k`` with softmax cross-entropy, by backpropagation.

    Forward: ``a = x W1 + b1``, ``h = act(a)``, ``z = h W2 + b2``, ``L = (1/m) sum_i
    [logsumexp(z_i) - z_i[y_i]]``. Backward (Rumelhart, Hinton & Williams 1986):
    ``dz = (softmax(z) - onehot(y)) / m``, ``dW2 = h^T dz``, ``db2 = sum dz``,
    ``dh = dz W2^T``, ``da = dh * act'(a)`` (tanh: ``1 - h^2``; relu: ``[a > 0]``),
    ``dW1 = x^T da``, ``db1 = sum da``.

    Initialization from the seed: tanh: Glorot/Xavier uniform ``U(-r, r)``, ``r = sqrt(6 /
    (fan_in + fan_out))`` (Glorot & Bengio 2010); relu: He normal ``N(0, 2 / fan_in)`` (He et
    al. 2015); biases 0.
    """

    def __init__(
        self,
        x,
        labels,
        *,
        hidden: int,
        activation: str,
        name: str,
        title: str,
        description: str,
    ) -> None:
        self._set_data(x, labels, name, title, description)
        self.hidden = hidden
        self.activation = activation
        d, h, k = self.n_features, hidden, self.n_classes
        self.shapes = {"W1": (d, h), "b1": (h,), "W2": (h, k), "b2": (k,)}

    def _init(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        out = {}
        for w, b in (("W1", "b1"), ("W2", "b2")):
            fan_in, fan_out = self.shapes[w]
            if self.activation == "tanh":
                r = np.sqrt(6.0 / (fan_in + fan_out))
                out[w] = rng.uniform(-r, r, size=(fan_in, fan_out))
            else:
                out[w] = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
            out[b] = np.zeros(fan_out)
        return out

    def _forward(self, p, x):
        a = x @ p["W1"] + p["b1"]
        h = np.tanh(a) if self.activation == "tanh" else np.maximum(a, 0.0)
        return a, h, h @ p["W2"] + p["b2"]

    def _logits(self, p, rows):
        x = self.X if rows is None else self.X[rows]
        return self._forward(p, x)[2]

    def _evaluate(self, p, rows, grad):
        x = self.X if rows is None else self.X[rows]
        labels = self.labels if rows is None else self.labels[rows]
        a, h, z = self._forward(p, x)
        loss, dz = _cross_entropy(z, labels, grad)
        if not grad:
            return loss, None
        dh = dz @ p["W2"].T
        da = dh * (1.0 - h * h) if self.activation == "tanh" else dh * (a > 0)
        return loss, {"W1": x.T @ da, "b1": da.sum(axis=0), "W2": h.T @ dz, "b2": dz.sum(axis=0)}


# ---------------------------------------------------------------------------------------------
# The noisy quadratic
# ---------------------------------------------------------------------------------------------


class NoisyQuadratic(Problem):
    """``f(theta) = (1/n) sum_i 0.5 (theta - c_i)^T H (theta - c_i)``: one row = one sample c_i.

    ``H = Q diag(lambda) Q^T`` with eigenvalues ``lambda`` log-spaced from 1 down to
    ``1 / condition_number`` and ``Q`` a seeded random rotation (the identity when
    ``rotate=False``: an axis-aligned valley); ``c_i = noise * z_i``, ``z_i ~ N(0, I)``.
    Gradient over rows B: ``H (theta - mean_{i in B} c_i)``, exact on all rows and noisy on a
    mini-batch (gradient covariance ``H Cov(c) H / |B|``). Closed-form optimum: ``theta* =
    mean_i c_i``, ``f* = (1/n) sum_i 0.5 (c_i - theta*)^T H (c_i - theta*)``. Start:
    ``theta_0 = 1`` (all ones) whatever the seed (DeepOBS's ``quadratic_deep``, Schneider,
    Balles & Hennig 2019, which uses this form with a Gaussian sample of centers).
    """

    def __init__(
        self,
        *,
        dim: int,
        condition_number: float,
        noise: float,
        n_samples: int,
        rotate: bool,
        seed: int,
        name: str,
        title: str,
        description: str,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.name, self.title, self.description = name, title, description
        self.dim, self.n_samples = dim, n_samples
        self.eigenvalues = _readonly(np.logspace(0.0, -np.log10(condition_number), dim))
        if rotate:
            q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
            q = q * np.sign(np.diag(r))  # Haar-distributed rotation (Mezzadri 2007)
        else:
            q = np.eye(dim)
        self.rotation = _readonly(q)
        self.H = _readonly((q * self.eigenvalues) @ q.T)
        self.centers = _readonly(noise * rng.standard_normal((n_samples, dim)))
        self.shapes = {"theta": (dim,)}
        center = self.centers.mean(axis=0)
        self.solution = {"theta": _readonly(center)}
        self.optimum = float(self._evaluate({"theta": center}, None, False)[0])

    def _init(self, seed: int) -> dict[str, np.ndarray]:
        return {"theta": np.ones(self.dim)}

    def _evaluate(self, p, rows, grad):
        c = self.centers if rows is None else self.centers[rows]
        diff = p["theta"] - c
        h_diff = diff @ self.H  # H is symmetric
        loss = 0.5 * np.mean(np.sum(diff * h_diff, axis=1))
        if not grad:
            return loss, None
        return loss, {"theta": h_diff.mean(axis=0)}

    def metrics(self, params):
        """``loss``, ``excess_loss`` = loss - optimum and ``distance`` = ||theta - theta*||."""
        out = super().metrics(params)
        theta = self._check_params(params)["theta"]
        out["distance"] = float(np.linalg.norm(theta - self.solution["theta"]))
        return out


# ---------------------------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------------------------


def linear(
    *,
    n_samples: int = 500,
    noise: float = 0.5,
    w_true: float = 3.0,
    b_true: float = 2.0,
    seed: int = 0,
) -> LinearRegression:
    """The lecture's linear regression: ``y = w_true x + b_true + noise * N(0, 1)``, ``x ~
    U(-1, 1)``, 500 rows, one feature, MSE loss; parameters ``w`` and ``b`` (both 0-d).

    Gradient (the lecture's): ``dL/dw = mean(-2 (y - y_hat) x)``, ``dL/db = mean(-2 (y -
    y_hat))``. Batch size 100 for 10 epochs is the lecture's 50 updates; batch size 1 its 5000.
    """
    n_samples = check_int("n_samples", n_samples, 2)
    noise = check_float("noise", noise, 0.0)
    w_true = check_float("w_true", w_true)
    b_true = check_float("b_true", b_true)
    rng = np.random.default_rng(_check_seed(seed))
    x = rng.uniform(-1.0, 1.0, n_samples)
    y = w_true * x + b_true + noise * rng.standard_normal(n_samples)
    return LinearRegression(
        x,
        y,
        scalar_weight=True,
        name="linear",
        title=f"Linear regression, one feature ({n_samples} rows)",
        description=(
            "The lecture's batch / stochastic / mini-batch gradient descent: y = w x + b fit by "
            "mean squared error with dL/dw = -2 (y - y_hat) x and dL/db = -2 (y - y_hat). Two "
            "parameters, so each optimizer's path is a curve on the contour plot of the loss: "
            "smooth for batch GD (one update per epoch), jittery for stochastic GD (one per "
            "row), in between for mini-batches."
        ),
    )


def sparse(
    *,
    n_samples: int = 500,
    density: float = 0.05,
    noise: float = 0.1,
    w_true: tuple[float, float] = (2.0, 2.0),
    b_true: float = 1.0,
    seed: int = 0,
) -> SparseRegression:
    """Linear regression with a dense feature ``x_0 ~ N(0, 1)`` and a sparse one ``x_1`` (1 in
    ``round(density * n_samples)`` seeded rows, else 0): ``y = w_true . x + b_true + noise *
    N(0, 1)``, MSE loss, parameters ``w`` (2,) and ``b``.

    Under batch GD the sparse weight's gradient ``mean(-2 (y - y_hat) x_1)`` is about
    ``density`` times the dense one's: see :meth:`SparseRegression.feature_gradient_magnitudes`.
    """
    n_samples = check_int("n_samples", n_samples, 2)
    density = check_float("density", density, 0.0, 1.0, low_open=True)
    noise = check_float("noise", noise, 0.0)
    try:
        weights = np.asarray(w_true, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"w_true must be two floats (dense, sparse), got {w_true!r}") from None
    if weights.shape != (2,) or not np.all(np.isfinite(weights)):
        raise ValueError(f"w_true must be two finite floats (dense, sparse), got {w_true!r}")
    b_true = check_float("b_true", b_true)
    rng = np.random.default_rng(_check_seed(seed))
    dense = rng.standard_normal(n_samples)
    present = rng.choice(n_samples, size=max(1, round(density * n_samples)), replace=False)
    rare = np.zeros(n_samples)
    rare[present] = 1.0
    x = np.column_stack([dense, rare])
    y = x @ weights + b_true + noise * rng.standard_normal(n_samples)
    return SparseRegression(
        x,
        y,
        density=density,
        name="sparse",
        title=f"Sparse feature ({density:.0%} of {n_samples} rows)",
        description=(
            "The lecture's sparse column and Adagrad's motivation: a feature present in few "
            "rows gets, under batch GD, a gradient averaged over all rows, so its weight moves "
            "by tiny steps with one global learning rate; per-parameter learning rates "
            "(Adagrad: lr / sqrt(sum g^2)) give it larger effective steps."
        ),
    )


@functools.cache
def _bundled(loader: str) -> tuple[np.ndarray, np.ndarray]:
    """(X, target) of a scikit-learn bundled dataset (files shipped with scikit-learn)."""
    import sklearn.datasets as datasets

    allowed = ("load_breast_cancer", "load_digits", "load_diabetes", "load_iris", "load_wine")
    check_choice("loader", loader, allowed)
    x, y = getattr(datasets, loader)(return_X_y=True)
    x = np.array(x, dtype=np.float64)
    y = np.array(y)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def breast_cancer() -> LogisticRegression:
    """Logistic regression on scikit-learn's bundled Wisconsin breast-cancer data (569 rows, 30
    standardized features, label 1 = benign), mean cross-entropy, accuracy metric."""
    x, y = _bundled("load_breast_cancer")
    return LogisticRegression(
        _standardize(x),
        y.astype(np.float64),
        name="breast_cancer",
        title="Logistic regression, breast cancer (569 x 30)",
        description=(
            "A real, convex classification problem: logistic regression on 30 standardized "
            "features. Every optimizer reaches high accuracy; the loss curve shows how fast."
        ),
    )


def digits_softmax() -> SoftmaxRegression:
    """Softmax regression on scikit-learn's bundled 8x8 digits (1797 rows, 64 pixels scaled to
    [0, 1] by /16, 10 classes), mean cross-entropy, accuracy metric."""
    x, y = _bundled("load_digits")
    return SoftmaxRegression(
        x / 16.0,
        y,
        name="digits_softmax",
        title="Softmax regression, digits (1797 x 64, 10 classes)",
        description=(
            "A convex multi-class problem with 650 parameters: mini-batch gradient descent on "
            "the softmax cross-entropy of handwritten digits."
        ),
    )


def digits_mlp(*, hidden: int = 32, activation: str = "tanh") -> MLPClassifier:
    """A 64-``hidden``-10 perceptron (``activation``: "tanh" with Glorot init, the default, or
    "relu" with He init) on the bundled digits scaled to [0, 1], mean cross-entropy."""
    hidden = check_int("hidden", hidden, 1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    x, y = _bundled("load_digits")
    return MLPClassifier(
        x / 16.0,
        y,
        hidden=hidden,
        activation=activation,
        name="digits_mlp",
        title=f"MLP 64-{hidden}-10 ({activation}), digits",
        description=(
            "A small non-convex network trained by backpropagation: where the lecture's "
            "challenges (learning rate, saddle points, plateaus) and the adaptive optimizers "
            "meet a real model."
        ),
    )


def diabetes() -> LinearRegression:
    """Linear regression on scikit-learn's bundled diabetes data (442 rows, 10 features), with
    features and target standardized (so the loss starts at 1 = Var(y)), MSE loss."""
    x, y = _bundled("load_diabetes")
    y = np.asarray(y, dtype=np.float64)
    return LinearRegression(
        _standardize(x),
        (y - y.mean()) / y.std(),
        name="diabetes",
        title="Linear regression, diabetes (442 x 10)",
        description=(
            "A real least-squares problem with correlated features (an ill-conditioned "
            "valley): its exact minimum is known, so the gap of every optimizer to it is "
            "measured, not guessed."
        ),
    )


def noisy_quadratic(
    *,
    dim: int = 10,
    condition_number: float = 100.0,
    noise: float = 1.0,
    n_samples: int = 1000,
    rotate: bool = True,
    seed: int = 0,
) -> NoisyQuadratic:
    """``f(theta) = mean_i 0.5 (theta - c_i)^T H (theta - c_i)`` in ``dim`` dimensions; the
    eigenvalues of H are log-spaced in [1 / condition_number, 1]; ``c_i = noise * N(0, I)``
    (one row per sample), so mini-batches give noisy gradients (see :class:`NoisyQuadratic`)."""
    dim = check_int("dim", dim, 1)
    condition_number = check_float("condition_number", condition_number, 1.0)
    noise = check_float("noise", noise, 0.0)
    n_samples = check_int("n_samples", n_samples, 1)
    rotate = check_bool("rotate", rotate)
    return NoisyQuadratic(
        dim=dim,
        condition_number=condition_number,
        noise=noise,
        n_samples=n_samples,
        rotate=bool(rotate),
        seed=_check_seed(seed),
        name="noisy_quadratic",
        title=f"Noisy quadratic (d={dim}, condition number {condition_number:g})",
        description=(
            "Gradient noise and curvature, isolated: a quadratic valley whose condition number "
            "is a knob, sampled one center per row, so that the batch size sets the noise "
            "(the 'noise ball' of constant-rate SGD, the effect of schedules and momentum)."
        ),
    )


from .matrix_problems import digits_cnn, matrix_regression  # noqa: E402 (they build on the above)

#: problem name -> factory (keyword arguments as documented on each factory)
PROBLEMS: dict[str, Callable[..., Problem]] = {
    "linear": linear,
    "sparse": sparse,
    "breast_cancer": breast_cancer,
    "digits_softmax": digits_softmax,
    "digits_mlp": digits_mlp,
    "diabetes": diabetes,
    "noisy_quadratic": noisy_quadratic,
    "matrix_regression": matrix_regression,
    "digits_cnn": digits_cnn,
}


def get(name: str, **kwargs: Any) -> Problem:
    """The problem ``name`` (one of :data:`PROBLEMS`) built with ``kwargs``:
    ``get("linear", n_samples=200, noise=0.1)``."""
    if not isinstance(name, str) or name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; valid names: {', '.join(PROBLEMS)}")
    factory = PROBLEMS[name]
    valid = list(inspect.signature(factory).parameters)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise TypeError(
            f"problem {name!r} got unexpected keyword argument(s) "
            f"{', '.join(map(repr, unknown))}; valid ones: {', '.join(valid) or 'none'}"
        )
    return factory(**kwargs)
