"""Beyond the lecture: porting a training script between Keras, PyTorch and JAX.

``run_porting``: the digits MLP trained from one initial point on one sequence of mini-batches
with Adam, SGD (Nesterov momentum) and RMSprop as each framework's own optimizer computes them
(``preset="keras" | "torch" | "optax"``, the frameworks' defaults for every argument the script
does not write), the gap this leaves between the three "same" runs, and how one preset closes
it. The run (:func:`setup`, :func:`train`) is also the reference of
``tests/cross_framework``, which trains the same model in Keras (JAX backend), PyTorch and a
``jax.jit`` loop with each framework's own autodiff and checks that these numbers are the
frameworks' numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import optimizers
from ..._validation import check_bool, check_float
from .. import problems
from . import Plot, Result, Table
from . import claims as C
from ._text import fmt

#: the model: 64-HIDDEN-10, tanh, softmax cross-entropy (problems.digits_mlp), Glorot init seed
HIDDEN, INIT_SEED = 16, 0
#: STEPS mini-batches of BATCH rows, drawn without replacement from one seeded permutation
STEPS, BATCH, BATCH_SEED = 24, 32, 14
#: the learning rate drops to DROP x its initial value from update SWITCH + 1 on
SWITCH, DROP = 12, 0.3
#: float64 throughout; the frameworks' own optimizers agree with the presets to this
RTOL = 1e-9

#: the script being ported: (label, optimizer, the arguments the script writes)
PORTED = (
    ("Adam", "Adam", {"learning_rate": 1e-3}),
    ("SGD Nesterov", "SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("RMSprop", "RMSprop", {"learning_rate": 1e-3}),
)
FRAMEWORKS = ("keras", "torch", "optax")
#: the function each preset reproduces (presets.PEERS), as a user of that framework writes it
NATIVE = {
    "Adam": {"keras": "keras.optimizers.Adam", "torch": "torch.optim.Adam", "optax": "optax.adam"},
    "SGD": {"keras": "keras.optimizers.SGD", "torch": "torch.optim.SGD", "optax": "optax.sgd"},
    "RMSprop": {
        "keras": "keras.optimizers.RMSprop",
        "torch": "torch.optim.RMSprop",
        "optax": "optax.rmsprop",
    },
}


@dataclass
class Run:
    """One training run: the final parameters (``W1, b1, W2, b2``, float64) and the full-data
    loss before the first and after every update (``STEPS + 1`` values)."""

    params: dict[str, np.ndarray]
    losses: np.ndarray


def setup():
    """``(problem, initial parameters, rows)``: the digits MLP 64-16-10 (tanh), its Glorot
    initialization of seed ``INIT_SEED`` and the ``STEPS x BATCH`` row indices of the
    mini-batches (the first ``STEPS * BATCH`` entries of a permutation of seed
    ``BATCH_SEED``). Every framework's run starts from these parameters and sees these
    batches in this order."""
    problem = problems.digits_mlp(hidden=HIDDEN)
    rows = np.random.default_rng(BATCH_SEED).permutation(problem.n_samples)
    return problem, problem.init_params(INIT_SEED), rows[: STEPS * BATCH].reshape(STEPS, BATCH)


def learning_rates(learning_rate: float, constant: bool = False) -> np.ndarray:
    """The learning rate of each update ``t = 1..STEPS``: ``eta`` for ``t <= SWITCH``, then
    ``DROP * eta`` (the product rounded once, in float64; every framework is given these very
    numbers); ``constant``: ``eta`` throughout."""
    learning_rate = check_float("learning_rate", learning_rate, 0.0, low_open=True)
    rates = np.full(STEPS, learning_rate)
    if not check_bool("constant", constant):
        rates[SWITCH:] = learning_rate * DROP
    return rates


def train(optimizer, learning_rate: float, *, constant: bool = False) -> Run:
    """Train the MLP of :func:`setup` with ``optimizer`` (a NumPy-dialect optimizer), setting
    its learning rate before each update to :func:`learning_rates` ``(learning_rate,
    constant)``; gradients by the problem's backpropagation, mean cross-entropy of the batch."""
    problem, params, rows = setup()
    names = tuple(problem.shapes)
    losses = [problem.loss(params)]
    for rate, batch in zip(learning_rates(learning_rate, constant), rows, strict=True):
        _, grads = problem.loss_and_grad(params, batch)
        optimizer.learning_rate = float(rate)
        optimizer.apply_gradients([(grads[k], params[k]) for k in names])
        losses.append(problem.loss(params))
    return Run(params, np.array(losses))


def deviation(a, b) -> float:
    """The relative gap between two sets of parameters: ``max_k max|a_k - b_k| / max|b_k|``
    over the tensors ``k`` (dicts by name, or sequences in one order; a tensor of zeros in
    ``b`` divides by the smallest normal float instead); 0 for identical runs."""
    if isinstance(a, dict):
        a, b = [a[k] for k in b], list(b.values())
    gaps = []
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"deviation: shapes {x.shape} and {y.shape} differ")
        scale = max(float(np.max(np.abs(y))), np.finfo(np.float64).tiny)
        gaps.append(float(np.max(np.abs(x - y))) / scale)
    return max(gaps)


def ported(base: str, arguments: dict, preset: str) -> Run:
    """The run of ``base(**arguments)`` in the framework of ``preset``: the script's arguments,
    that framework's defaults for the rest (``optimlab.<base>(preset=preset)``)."""
    return train(optimizers.get(base, preset=preset, **arguments), arguments["learning_rate"])


def run_porting(quick: bool = False) -> Result:
    """The three optimizers of :data:`PORTED`, each as Keras, PyTorch and optax compute it
    (their defaults and formulas), then each with the arguments of Keras's defaults written
    out, then with one preset in all three: the gap in final parameters and loss."""
    from ...viz import lines_figure

    own = {label: {fw: ported(base, args, fw) for fw in FRAMEWORKS} for label, base, args in PORTED}
    # the script with epsilon written out as Keras's default: the gap that is left is a formula
    adam_eps = train(optimizers.get("Adam", preset="torch", learning_rate=1e-3, epsilon=1e-7), 1e-3)
    one = {
        label: {fw: ported(base, args, "keras") for fw in FRAMEWORKS}
        for label, base, args in PORTED
    }
    numbers: dict = {}
    rows = []
    gaps = {}
    for label, _, _ in PORTED:
        runs = own[label]
        keras_run = runs["keras"]
        for fw in ("torch", "optax"):
            gap = deviation(runs[fw].params, keras_run.params)
            loss_gap = float(abs(runs[fw].losses[-1] - keras_run.losses[-1]))
            gaps[label, fw] = gap
            numbers[f"{label}: parameter gap {fw} vs keras, own defaults"] = gap
            numbers[f"{label}: final loss gap {fw} vs keras, own defaults"] = loss_gap
            one_gap = deviation(one[label][fw].params, one[label]["keras"].params)
            numbers[f"{label}: parameter gap {fw} vs keras, preset keras"] = one_gap
            rows.append([label, f"{fw} vs keras", gap, loss_gap, one_gap])
        for fw in FRAMEWORKS:
            numbers[f"{label}: final loss, {fw}"] = float(runs[fw].losses[-1])
    eps_gap = deviation(adam_eps.params, own["Adam"]["keras"].params)
    torch_optax = deviation(own["Adam"]["optax"].params, own["Adam"]["torch"].params)
    numbers["Adam: parameter gap optax vs torch, own defaults"] = torch_optax
    numbers["Adam: parameter gap torch(epsilon=1e-7) vs keras"] = eps_gap
    one_gaps = [v for k, v in numbers.items() if k.endswith("preset keras")]
    steps = np.arange(STEPS + 1)
    curves = {
        f"{label}: {fw} - keras": (
            steps[1:],
            np.abs(own[label][fw].losses - own[label]["keras"].losses)[1:],
        )
        for label, _, _ in PORTED
        for fw in ("torch", "optax")
    }
    figure = lines_figure(
        curves,
        xlabel="update",
        ylabel="|loss(framework) - loss(Keras)|, full data",
        title=f"The same script in three frameworks: loss gaps (lr x {DROP:g} after update "
        f"{SWITCH})",
    )
    sgd_t = gaps["SGD Nesterov", "torch"]
    rms_t = gaps["RMSprop", "torch"]
    summary = (
        "A script moves from Keras to PyTorch or JAX: `Adam(learning_rate=1e-3)` becomes "
        "`torch.optim.Adam(params, lr=1e-3)` or `optax.adam(1e-3)`, and it looks like the same "
        "optimizer. It is not: each framework fills in the arguments the script does not write "
        "with its own defaults, and some formulas differ. Here the digits MLP "
        f"64-{HIDDEN}-10 (tanh) is trained from one initialization on the same {STEPS} "
        f"mini-batches of {BATCH} rows, the learning rate multiplied by {DROP:g} after update "
        f"{SWITCH}, in float64, as each framework's own optimizer computes it "
        "(`optimlab.<X>(preset=...)`; `tests/cross_framework` trains the same model in Keras, "
        "PyTorch and a jitted JAX loop with their own optimizers and their own autodiff and "
        f"finds the same numbers to {fmt(RTOL)}).\n\n"
        f"**Adam**: PyTorch's and optax's epsilon is 1e-8, Keras's 1e-7: after {STEPS} updates "
        f"the parameters differ by {fmt(gaps['Adam', 'torch'])} (relative: epsilon "
        "weighs most where $v_t$ is small). optax's Adam and "
        f"PyTorch's are the same formula (gap {fmt(torch_optax)}). Writing "
        "`eps=1e-7` in the PyTorch script does not close the gap: Keras adds epsilon to the "
        "root of the uncorrected $v_t$ (the $\\hat\\epsilon$ form of Kingma and Ba's "
        "section 2), PyTorch to the root of the bias-corrected one; the gap is then "
        f"{fmt(eps_gap)}.\n\n"
        f"**SGD with Nesterov momentum**: the same numbers until the learning rate changes "
        "(up to rounding), then apart: Keras keeps the learning rate inside its velocity "
        "($v \\leftarrow \\mu v - \\eta g$), so the old rate decays out of it; PyTorch and "
        "optax multiply the rate at the end ($b \\leftarrow \\mu b + g$, "
        f"$\\theta \\leftarrow \\theta - \\eta (g + \\mu b)$), so it acts at once. Final gap "
        f"{fmt(sgd_t)}.\n\n"
        f"**RMSprop**: PyTorch's $\\rho$ is 0.99 where Keras's and optax's is 0.9, and its "
        "epsilon 1e-8 is added outside the root where Keras's 1e-7 is inside: the gap is "
        f"{fmt(rms_t)}, the largest here.\n\n"
        '**One preset closes it.** `optimlab.torch.Adam(params, lr=1e-3, preset="keras")`, '
        '`optimlab.keras.Adam(1e-3, preset="torch")` and `optimlab.optax.adam(1e-3, '
        'preset="keras")` compute the named framework\'s numbers in any of the three: with '
        f'`preset="keras"` everywhere the largest gap is {fmt(max(one_gaps))}.'
    )
    claims = [
        C.at_least(
            "Adam ported as is to PyTorch (its epsilon 1e-8 for Keras's 1e-7) ends with "
            "parameters more than 1e-6 (relative) away from Keras's",
            gaps["Adam", "torch"],
            1e-6,
        ),
        C.at_least(
            "Writing Keras's epsilon into the PyTorch script leaves a gap above 1e-9: the "
            "epsilon's place in the formula differs",
            eps_gap,
            1e-9,
        ),
        C.at_most(
            "Writing Keras's epsilon narrows Adam's gap",
            eps_gap,
            gaps["Adam", "torch"],
        ),
        C.at_most(
            "optax's Adam and PyTorch's compute the same numbers (gap below 1e-14)",
            torch_optax,
            1e-14,
        ),
        C.at_least(
            "SGD with Nesterov momentum ported to PyTorch drifts apart once the learning rate "
            "changes (lr inside the velocity in Keras, outside in PyTorch): gap above 1e-6",
            sgd_t,
            1e-6,
        ),
        C.at_most(
            "Before the learning rate changes, Keras's and PyTorch's SGD Nesterov agree to "
            "rounding (loss gap below 1e-12 at every update up to the switch)",
            float(
                np.max(
                    np.abs(
                        own["SGD Nesterov"]["torch"].losses - own["SGD Nesterov"]["keras"].losses
                    )[: SWITCH + 1]
                )
            ),
            1e-12,
        ),  # fmt: skip
        C.check(
            "RMSprop's gap (PyTorch's rho 0.99, epsilon outside the root) is the largest of "
            "the three optimizers'",
            rms_t >= max(gaps["Adam", "torch"], sgd_t),
            f"RMSprop {fmt(rms_t)}, Adam {fmt(gaps['Adam', 'torch'])}, SGD {fmt(sgd_t)}",
        ),
        C.check(
            "With one preset in every framework the runs are identical (gap 0)",
            max(one_gaps) == 0.0,
            f"largest gap {fmt(max(one_gaps))}",
        ),
    ]
    return Result(
        key="porting",
        title="Beyond the lecture: porting between frameworks",
        chapter="",
        summary=summary,
        equations=[
            r"\text{Keras: } \theta \leftarrow \theta - \eta\,\frac{\sqrt{1-\beta_2^t}}"
            r"{1-\beta_1^t}\,\frac{m_t}{\sqrt{v_t} + \hat\epsilon},\quad \hat\epsilon = 10^{-7}",
            r"\text{PyTorch, optax: } \theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}\,"
            r"\frac{m_t}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon},\quad \epsilon = 10^{-8}",
            r"\text{gap} = \max_k \frac{\max |\theta_k^{\mathrm{A}} - \theta_k^{\mathrm{B}}|}"
            r"{\max |\theta_k^{\mathrm{B}}|}",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Digits MLP 64-{HIDDEN}-10, {STEPS} updates of batch {BATCH}, float64: the "
                "gap to the Keras run",
                [
                    "optimizer",
                    "framework",
                    "parameter gap, own defaults",
                    "final loss gap, own defaults",
                    "parameter gap, preset keras",
                ],
                rows,
                note="gap: the largest difference of a tensor's entries over its largest "
                "entry, the largest over W1, b1, W2, b2; own defaults: what "
                + ", ".join(NATIVE["Adam"].values())
                + " (and the SGD, RMSprop of each) compute with the arguments the script writes",
            )
        ],
        figures={
            "loss_gaps": Plot(
                figure,
                "each line is how far a port's loss is from Keras's (PyTorch's and optax's "
                "lines coincide for Adam and SGD: the same defaults and formulas); SGD's "
                "appear at the learning-rate switch (before it the gap is rounding, mostly 0, "
                "off the log axis), RMSprop's PyTorch line sits highest from the first update.",
            )
        },
        claims=claims,
        settings={
            "hidden": HIDDEN,
            "steps": STEPS,
            "batch": BATCH,
            "switch": SWITCH,
            "drop": DROP,
            "quick": quick,
        },
    )
