"""The lecture's introduction: what decides how fast a network trains, besides the optimizer:
the scale of the initial weights, batch normalization and the activation function, measured
on a small multi-layer perceptron on scikit-learn's bundled digits (NumPy only).

The network: 64 pixels -> 3 hidden layers of 32 units -> 10 classes, softmax cross-entropy::

    a_l = h_{l-1} W_l + b_l,  (batch norm: a_l <- gamma_l (a_l - mean_B) / sqrt(var_B + eps)
    + beta_l),  h_l = act(a_l),  z = h_3 W_4 + b_4

trained by backpropagation with the same optimizer, learning rate, batches and seed in every
variant, so that only the varied ingredient differs.
"""

from __future__ import annotations

import numpy as np

from ... import optimizers
from .. import problems
from ..problems import _Classifier, _cross_entropy
from ..training import fit
from . import Plot, Result, Table
from . import claims as C
from ._text import fmt, pct

ACTIVATIONS = ("sigmoid", "relu")
HIDDEN = (32, 32, 32)
BN_EPS = 1e-5


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # = 1 / (1 + e^-a), without overflow


class DeepMLP(_Classifier):
    """A perceptron 64-32-32-32-10 on the bundled digits with a choice of activation
    (``"sigmoid"`` or ``"relu"``), initial weight scale and batch normalization.

    ``init``: ``"scaled"`` draws W_l ~ N(0, s^2 / fan_in) with s^2 = 2 for ReLU (He et al.
    2015) and 1 for the sigmoid (LeCun 1998); a number draws W_l ~ N(0, init^2) whatever the
    layer size (the old habit of std = 0.01, or 1). Biases start at 0, batch-norm scales at 1.

    With ``batch_norm`` every hidden pre-activation is normalized over the rows it is
    evaluated on (the mini-batch in training, all rows for the full-data loss; no running
    averages) and rescaled by a learned gamma and shifted by a learned beta (Ioffe & Szegedy
    2015). Backward: with xh the normalized values and dxh = gamma * dy,
    da = (dxh - mean(dxh) - xh * mean(dxh * xh)) / sqrt(var + eps).
    """

    def __init__(self, *, activation: str, init, batch_norm: bool) -> None:
        x, y = problems._bundled("load_digits")
        name = f"digits_deep_{activation}"
        self._set_data(x / 16.0, y, name, f"MLP 64-32-32-32-10 ({activation})", "")
        self.activation, self.init, self.batch_norm = activation, init, batch_norm
        sizes = (self.n_features, *HIDDEN, self.n_classes)
        self.layers = len(sizes) - 1
        self.shapes = {}
        for i in range(self.layers):
            self.shapes[f"W{i + 1}"] = (sizes[i], sizes[i + 1])
            self.shapes[f"b{i + 1}"] = (sizes[i + 1],)
            if batch_norm and i < self.layers - 1:
                self.shapes[f"gamma{i + 1}"] = (sizes[i + 1],)

    def _init(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        out = {}
        for key, shape in self.shapes.items():
            if key.startswith("W"):
                fan_in = shape[0]
                if self.init == "scaled":
                    std = np.sqrt((2.0 if self.activation == "relu" else 1.0) / fan_in)
                else:
                    std = float(self.init)
                out[key] = rng.standard_normal(shape) * std
            elif key.startswith("gamma"):
                out[key] = np.ones(shape)
            else:
                out[key] = np.zeros(shape)
        return out

    def _act(self, a):
        return _sigmoid(a) if self.activation == "sigmoid" else np.maximum(a, 0.0)

    def _dact(self, a, h):
        return h * (1.0 - h) if self.activation == "sigmoid" else (a > 0).astype(float)

    def forward(self, p, x):
        """The pre-activations, normalized values and activations of every layer, and the
        logits."""
        h, cache = x, []
        for i in range(1, self.layers):
            a = h @ p[f"W{i}"]
            norm = None
            if self.batch_norm:
                mean, var = a.mean(axis=0), a.var(axis=0)
                inv = 1.0 / np.sqrt(var + BN_EPS)
                xh = (a - mean) * inv
                norm = (xh, inv)
                a = p[f"gamma{i}"] * xh + p[f"b{i}"]
            else:
                a = a + p[f"b{i}"]
            out = self._act(a)
            cache.append((h, a, norm, out))
            h = out
        z = h @ p[f"W{self.layers}"] + p[f"b{self.layers}"]
        return cache, h, z

    def _logits(self, p, rows):
        x = self.X if rows is None else self.X[rows]
        return self.forward(p, x)[2]

    def _evaluate(self, p, rows, grad):
        x = self.X if rows is None else self.X[rows]
        labels = self.labels if rows is None else self.labels[rows]
        cache, h, z = self.forward(p, x)
        loss, dz = _cross_entropy(z, labels, grad)
        if not grad:
            return loss, None
        last = self.layers
        grads = {f"W{last}": h.T @ dz, f"b{last}": dz.sum(axis=0)}
        dh = dz @ p[f"W{last}"].T
        for i in range(self.layers - 1, 0, -1):
            h_in, a, norm, out = cache[i - 1]
            da = dh * self._dact(a, out)
            grads[f"b{i}"] = da.sum(axis=0)
            if self.batch_norm:
                xh, inv = norm
                grads[f"gamma{i}"] = (da * xh).sum(axis=0)
                dxh = da * p[f"gamma{i}"]
                da = inv * (dxh - dxh.mean(axis=0) - xh * (dxh * xh).mean(axis=0))
            grads[f"W{i}"] = h_in.T @ da
            dh = da @ p[f"W{i}"].T
        return loss, grads


VARIANTS = {  # label -> (activation, init, batch norm)
    "sigmoid, scaled init": ("sigmoid", "scaled", False),
    "ReLU, scaled init": ("relu", "scaled", False),
    "ReLU, init std 0.01": ("relu", 0.01, False),
    "ReLU, init std 0.01 + batch norm": ("relu", 0.01, True),
    "sigmoid, scaled init + batch norm": ("sigmoid", "scaled", True),
    "ReLU, init std 1": ("relu", 1.0, False),
}


def layer_gradients(problem: DeepMLP, seed: int = 0) -> np.ndarray:
    """|dL/dW_l| (Frobenius norm) of every layer at the initial parameters, full data."""
    _, grads = problem.loss_and_grad(problem.init_params(seed))
    return np.array([np.linalg.norm(grads[f"W{i}"]) for i in range(1, problem.layers + 1)])


def run_network_speed(quick: bool = False) -> Result:
    """The same network, optimizer and data with one ingredient changed at a time: sigmoid
    against ReLU, a weight scale that suits the layer size against std 0.01 and 1, with and
    without batch normalization; the loss per epoch, and the gradient reaching each layer at
    the start."""
    from ...viz import lines_figure

    epochs = 5 if quick else 10
    lr, beta, batch = 0.01, 0.9, 32
    curves, rows, numbers, finals, grads = {}, [], {}, {}, {}
    for label, (activation, init, bn) in VARIANTS.items():
        net = DeepMLP(activation=activation, init=init, batch_norm=bn)
        with np.errstate(all="ignore"):
            opt = optimizers.SGD(learning_rate=lr, momentum=beta)
            h = fit(net, opt, epochs=epochs, batch_size=batch, seed=0)
        loss = np.asarray(h.loss_per_epoch, float)
        accuracy = net.metrics(h.params)["accuracy"]
        g = layer_gradients(net)
        grads[label] = g
        finals[label] = float(loss[-1])
        curves[label] = (np.arange(epochs + 1), loss)
        rows.append([label, float(loss[0]), float(loss[-1]), pct(accuracy), float(g[0])])
        numbers[f"final loss: {label}"] = float(loss[-1])
        numbers[f"first layer gradient |dL/dW1| at the start: {label}"] = float(g[0])
    chance = float(np.log(10.0))
    layer_axis = np.arange(1, len(HIDDEN) + 2)
    figures = {
        "loss_per_epoch": Plot(
            lines_figure(
                curves,
                xlabel="epoch",
                ylabel="full-data cross-entropy",
                title=f"One network, six ways to start: momentum SGD lr = {fmt(lr)}, batch {batch}",
                log_y=True,
            ),
            "the flat lines at ln 10 ≈ 2.3 are networks that have not started to learn (ReLU "
            "with std 0.01, the sigmoid without batch norm); batch norm lifts both off; ReLU "
            "with a scaled init falls steadily, std 1 starts far above and crawls.",
        ),
        "gradient_per_layer": Plot(
            lines_figure(
                {k: (layer_axis, v) for k, v in grads.items()},
                xlabel="layer (1 = next to the input)",
                ylabel="|dL/dW| at the start",
                title="How much gradient reaches each layer at initialization",
                log_y=True,
            ),
            "the std-0.01 line lies orders of magnitude below the others, and the sigmoid's "
            "falls towards the input (its slope is at most 1/4) while the scaled ReLU's does "
            "not.",
        ),
    }
    sig, relu, tiny, tiny_bn, sig_bn, big = (finals[k] for k in VARIANTS)
    g_sig, g_relu, g_tiny = (rows[k][4] for k in (0, 1, 2))
    sig_ratio = float(grads["sigmoid, scaled init"][0] / grads["sigmoid, scaled init"][-1])
    small = DeepMLP(activation="relu", init=0.01, batch_norm=False)
    _, last, _ = small.forward(small.init_params(0), small.X)
    shrink = float(np.sqrt(np.mean(last**2)) / np.sqrt(np.mean(small.X**2)))
    numbers["last hidden / input activation size at the start, std 0.01"] = shrink
    relu_ratio = float(grads["ReLU, scaled init"][0] / grads["ReLU, scaled init"][-1])
    summary = (
        "Before any optimizer, the lecture names three things that decide how fast a network "
        "trains: the initial weights, batch normalization and the activation function. Here "
        "one network (64 pixels, three hidden layers of 32, ten digits) is trained with the "
        f"same optimizer (SGD with momentum {fmt(beta)}, lr = {fmt(lr)}, batches of {batch}, "
        f"seed 0) for {epochs} epochs, "
        "changing one of them at a time.\n\n"
        "**Weight initialization.** Drawn with a standard deviation of 0.01, every layer "
        f"shrinks the signal: the last hidden layer's activations are {fmt(shrink)} times "
        "the size of the input's, so the output is almost the same for every image and the "
        f"loss sits at chance, $\\ln 10 = {fmt(chance, 4)}$: after {epochs} epochs it is "
        f"{fmt(tiny, 4)}. The gradient reaching the first layer is {fmt(g_tiny)}, "
        f"{fmt(g_relu / g_tiny)} times smaller than with a scaled init. Scaled to the layer "
        "size ($\\mathrm{std} = \\sqrt{2/n_{in}}$ for "
        f"ReLU) the same network ends at {fmt(relu)}; too large (std 1) it ends at "
        f"{fmt(big)}.\n\n"
        "**Batch normalization** rescales each layer's pre-activations to mean 0 and variance "
        "1 on every batch, so the scale of the weights no longer matters much: with std 0.01 "
        f"and batch norm the loss ends at {fmt(tiny_bn)} instead of {fmt(tiny)}. It helps the "
        f"sigmoid too: {fmt(sig_bn)} against {fmt(sig)}.\n\n"
        "**The activation.** Backpropagation multiplies the gradient by the activation's "
        "slope at every layer, and the sigmoid's slope is at most 1/4: at the start the "
        "first layer gets "
        f"{fmt(sig_ratio)} times the last layer's gradient with the sigmoid and "
        f"{fmt(relu_ratio)} times with ReLU, and after {epochs} epochs the sigmoid network is "
        f"at {fmt(sig)}, the ReLU one "
        f"at {fmt(relu)}."
    )
    claims = [
        C.close(
            "With init std 0.01 (no batch norm) the loss stays at chance, ln 10, within 1%",
            tiny,
            chance,
            rel=0.01,
        ),
        C.at_most(
            "With init std 0.01 the signal vanishes: the last hidden layer's activations are "
            "less than 1/1000 the size of the input's",
            shrink,
            1e-3,
        ),
        C.check(
            "With init std 0.01 the gradient vanishes: the first layer gets less than 1/1000 "
            "of what it gets with a scaled init",
            g_tiny < 1e-3 * g_relu,
            f"{fmt(g_tiny)} vs {fmt(g_relu)}",
        ),
        C.check(
            "Batch norm rescues the std-0.01 network: its loss ends below half of chance",
            tiny_bn < 0.5 * chance,
            f"{fmt(tiny_bn)} vs {fmt(chance)}",
        ),
        C.check(
            "A scaled init trains faster than std 0.01 or std 1 (ReLU)",
            relu < tiny and relu < big,
            f"{fmt(relu)}, {fmt(tiny)}, {fmt(big)}",
        ),  # fmt: skip
        C.check(
            "ReLU trains faster than the sigmoid (same scaled init)",
            relu < sig,
            f"{fmt(relu)} vs {fmt(sig)}",
        ),
        C.check(
            "The sigmoid passes back less gradient: first / last layer below 1/10, ReLU's above 1",
            sig_ratio < 0.1 and relu_ratio > 1,
            f"{fmt(sig_ratio)} vs {fmt(relu_ratio)}",
        ),
        C.check(
            "Batch norm speeds up the sigmoid network", sig_bn < sig, f"{fmt(sig_bn)} vs {fmt(sig)}"
        ),  # fmt: skip
    ]
    return Result(
        key="network_speed",
        title="How fast a network trains: initialization, batch norm, activation",
        chapter="",
        summary=summary,
        equations=[
            r"a_l = h_{l-1} W_l + b_l,\quad h_l = \sigma(a_l) \text{ or } \max(0, a_l)",
            r"\frac{\partial L}{\partial h_{l-1}} = \Big(\frac{\partial L}{\partial h_l}"
            r" \odot \sigma'(a_l)\Big) W_l^{\top},\quad \sigma'(a) = \sigma(a)(1 - \sigma(a))"
            r" \le \tfrac14",
            r"\text{batch norm: } \hat a = \frac{a - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}},"
            r"\quad a \leftarrow \gamma \hat a + \beta",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"MLP 64-32-32-32-10 on the 1,797 bundled digits, momentum SGD lr = {fmt(lr)}, "
                f"batch {batch}, {epochs} epochs, seed 0",
                [
                    "variant",
                    "loss at start",
                    "final loss",
                    "final accuracy",
                    "|dL/dW₁| at start",
                ],
                rows,
                note="Loss: the full-data cross-entropy (batch norm uses the statistics of all "
                "rows for it); chance is ln 10 = 2.30.",
            )
        ],
        figures=figures,
        claims=claims,
        settings={
            "data": "sklearn digits (bundled)",
            "lr": lr,
            "momentum": beta,
            "batch": batch,
            "epochs": epochs,
            "seed": 0,
        },  # fmt: skip
    )
