"""Problems whose parameters are matrices and convolution kernels, where an optimizer that acts
on a whole tensor (Muon's orthogonalized update, Adafactor's factored moment) differs from an
elementwise one. A 2-D surface cannot show that: its parameter is one vector.

``matrix_regression``
    Least squares for a matrix, ``Y = X W* + noise``, with rotated, ill-conditioned inputs:
    every parameter is one ``d x k`` matrix, and the gradient's singular values are spread
    over the condition number.
``digits_cnn``
    A small convolutional network on scikit-learn's bundled 8x8 digits: a 3x3 convolution
    with ``filters`` channels, ReLU, 2x2 average pooling and a dense softmax layer.

Both follow :class:`optimlab.lab.problems.Problem` (``loss_and_grad`` by hand-written
backpropagation, checked against central differences in the tests).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_float, check_int
from .problems import Problem, _bundled, _check_seed, _Classifier, _cross_entropy, _readonly


class MatrixRegression(Problem):
    """Least squares for a matrix of weights.

    ``L(W) = (1/m) sum_i 0.5 ||x_i W - y_i||^2``, ``dL/dW = (1/m) X^T (X W - Y)``. With
    ``Sigma = X^T X / n`` the full-batch gradient at ``W`` is ``Sigma (W - W_ls)``: its singular
    values are those of the error ``W - W_ls`` stretched by Sigma's eigenvalues, so plain
    gradient descent closes the error in Sigma's small-eigenvalue directions
    ``condition_number`` times more slowly than in its large ones, and a rotation of the
    inputs hides those directions from any per-coordinate (diagonal) preconditioner. The
    optimum is the least-squares solution ``W_ls = (X^T X)^{-1} X^T Y``. Parameters start at 0.
    """

    def __init__(self, x, y, *, name: str, title: str, description: str) -> None:
        self.X = _readonly(np.asarray(x, dtype=np.float64))
        self.Y = _readonly(np.asarray(y, dtype=np.float64))
        self.name, self.title, self.description = name, title, description
        self.n_samples, self.n_features = self.X.shape
        self.n_outputs = self.Y.shape[1]
        self.shapes = {"W": (self.n_features, self.n_outputs)}
        solution = np.linalg.lstsq(self.X, self.Y, rcond=None)[0]
        self.solution = {"W": _readonly(solution)}
        residual = self.X @ solution - self.Y
        self.optimum = float(0.5 * np.mean(np.sum(residual * residual, axis=1)))

    def _init(self, seed: int) -> dict[str, np.ndarray]:
        return {"W": np.zeros(self.shapes["W"])}

    def _evaluate(self, p, rows, grad):
        x = self.X if rows is None else self.X[rows]
        y = self.Y if rows is None else self.Y[rows]
        residual = x @ p["W"] - y
        loss = 0.5 * np.mean(np.sum(residual * residual, axis=1))
        if not grad:
            return loss, None
        return loss, {"W": x.T @ residual / x.shape[0]}


class ConvClassifier(_Classifier):
    """A convolutional network for ``side x side`` gray images (Keras's layout, "valid"
    padding, stride 1):

    ``a = conv(x, K) + c`` with ``K`` of shape ``(3, 3, 1, F)``, ``h = relu(a)`` of shape
    ``(side-2, side-2, F)``, ``q = avgpool_2x2(h)`` flattened, ``z = q W + b``, mean softmax
    cross-entropy. The convolution is a matrix product of the image patches ("im2col"):
    ``a = P K_flat`` with ``P`` the ``(n (side-2)^2, 9)`` patches, so ``dK_flat = P^T da``,
    ``dc = sum da``; average pooling hands each pooled gradient to its four inputs divided by
    4; ``da = dh [a > 0]`` (LeCun et al. 1998 for the architecture; backpropagation as in
    Rumelhart, Hinton & Williams 1986). Initialization: He normal ``N(0, 2 / fan_in)`` for
    ``K`` (fan_in 9) and Glorot uniform for ``W`` (Glorot & Bengio 2010); biases 0.
    """

    def __init__(self, x, labels, *, side: int, filters: int, name, title, description):
        self._set_data(x, labels, name, title, description)
        self.side, self.filters = side, filters
        self.inner = side - 2
        self.pooled = self.inner // 2
        images = self.X.reshape(-1, side, side)
        windows = np.lib.stride_tricks.sliding_window_view(images, (3, 3), axis=(1, 2))
        self._patches = _readonly(np.ascontiguousarray(windows.reshape(self.n_samples, -1, 9)))
        self.shapes = {
            "kernel": (3, 3, 1, filters),
            "kernel_bias": (filters,),
            "W": (self.pooled * self.pooled * filters, self.n_classes),
            "b": (self.n_classes,),
        }

    def _init(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        fan_in, fan_out = self.shapes["W"]
        r = np.sqrt(6.0 / (fan_in + fan_out))
        return {
            "kernel": rng.standard_normal(self.shapes["kernel"]) * np.sqrt(2.0 / 9.0),
            "kernel_bias": np.zeros(self.filters),
            "W": rng.uniform(-r, r, size=(fan_in, fan_out)),
            "b": np.zeros(self.n_classes),
        }

    def _forward(self, p, rows):
        patches = self._patches if rows is None else self._patches[rows]
        m, s, f = patches.shape[0], self.inner, self.filters
        a = (patches.reshape(-1, 9) @ p["kernel"].reshape(9, f)).reshape(m, s, s, f)
        a += p["kernel_bias"]
        h = np.maximum(a, 0.0)
        k = self.pooled
        q = h[:, : 2 * k, : 2 * k].reshape(m, k, 2, k, 2, f).mean(axis=(2, 4))
        return patches, a, q.reshape(m, -1)

    def _logits(self, p, rows):
        _, _, q = self._forward(p, rows)
        return q @ p["W"] + p["b"]

    def _evaluate(self, p, rows, grad):
        labels = self.labels if rows is None else self.labels[rows]
        patches, a, q = self._forward(p, rows)
        loss, dz = _cross_entropy(q @ p["W"] + p["b"], labels, grad)
        if not grad:
            return loss, None
        m, f, k = patches.shape[0], self.filters, self.pooled
        dq = (dz @ p["W"].T).reshape(m, k, 1, k, 1, f) / 4.0
        dh = np.zeros_like(a)
        spread = np.broadcast_to(dq, (m, k, 2, k, 2, f))
        dh[:, : 2 * k, : 2 * k] = spread.reshape(m, 2 * k, 2 * k, f)
        da = dh * (a > 0)
        return loss, {
            "kernel": (patches.reshape(-1, 9).T @ da.reshape(-1, f)).reshape(3, 3, 1, f),
            "kernel_bias": da.sum(axis=(0, 1, 2)),
            "W": q.T @ dz,
            "b": dz.sum(axis=0),
        }


def matrix_regression(
    *,
    n_samples: int = 512,
    n_features: int = 32,
    n_outputs: int = 16,
    condition_number: float = 100.0,
    noise: float = 0.01,
    seed: int = 0,
) -> MatrixRegression:
    """``Y = X W* + noise * N(0, 1)`` with ``X = Z diag(s) Q`` (``Z`` standard normal rows, ``s``
    log-spaced from 1 to ``1 / sqrt(condition_number)``, ``Q`` a random rotation), so the input
    covariance has condition number ``condition_number`` in directions no coordinate axis
    shows; ``W*`` standard normal, scaled by ``1/sqrt(n_features)``. Loss ``0.5 ||x W - y||^2``
    per row; one parameter ``W`` of shape ``(n_features, n_outputs)``."""
    n_samples = check_int("n_samples", n_samples, 2)
    n_features = check_int("n_features", n_features, 1)
    n_outputs = check_int("n_outputs", n_outputs, 1)
    condition_number = check_float("condition_number", condition_number, 1.0)
    noise = check_float("noise", noise, 0.0)
    rng = np.random.default_rng(_check_seed(seed))
    scales = np.logspace(0.0, -0.5 * np.log10(condition_number), n_features)
    rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    x = (rng.standard_normal((n_samples, n_features)) * scales) @ rotation
    w_true = rng.standard_normal((n_features, n_outputs)) / np.sqrt(n_features)
    y = x @ w_true + noise * rng.standard_normal((n_samples, n_outputs))
    return MatrixRegression(
        x,
        y,
        name="matrix_regression",
        title=(
            f"Matrix regression {n_features} x {n_outputs} (condition number "
            f"{condition_number:g}, rotated)"
        ),
        description=(
            "A linear layer fit by least squares, with inputs whose covariance is "
            "ill-conditioned in rotated directions: the gradient matrix has a few large and "
            "many small singular values, which an orthogonalized update (Muon) equalizes and "
            "a per-coordinate rate (Adam) cannot see."
        ),
    )


def digits_cnn(*, filters: int = 8) -> ConvClassifier:
    """A convolutional network (3x3 convolution with ``filters`` channels, ReLU, 2x2 average
    pooling, dense softmax; see :class:`ConvClassifier`) on the bundled 8x8 digits scaled to
    [0, 1]."""
    filters = check_int("filters", filters, 1)
    x, y = _bundled("load_digits")
    return ConvClassifier(
        x / 16.0,
        y,
        side=8,
        filters=filters,
        name="digits_cnn",
        title=f"CNN conv3x3({filters})-relu-avgpool-dense, digits",
        description=(
            "A small convolutional network: a 4-D kernel, a dense matrix and two bias "
            "vectors, so optimizers that treat matrices, kernels and vectors differently "
            "(Muon, Adafactor) meet all three."
        ),
    )
