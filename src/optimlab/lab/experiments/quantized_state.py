"""Beyond the lecture: what 8 bits do to Adam's state (issue 16).

Adam keeps two float32 moments per parameter, ``m`` and ``v``; ``state_dtype="bfloat16"``
stores them in 16 bits and ``"int8"`` in 8 (blockwise, a float32 scale per 256 elements and
the dynamic-exponent code of Dettmers 2016, as bitsandbytes' ``Adam8bit`` and torchao's
``AdamW8bit``: :mod:`optimlab.quantization`), and ``"int4"`` in 4 (torchao's ``AdamW4bit``:
a scale per 128 elements, 16 codes). Each step reads the stored moments back as
float32, updates them (``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``), moves the
parameter by those float32 moments and only then stores them narrow again.

:func:`quality` trains the digits MLP 64-128-10 and a digits CNN (48 filters) with Adam from
one seed on the same mini-batches, once per state dtype, and returns a :class:`Quality`:
final training loss, final held-out accuracy, the largest gap of the loss curve to the
float32 run (absolute and relative) and which tensors had narrow state (only those of at
least 4096 elements: the MLP's 64 x 128 ``W1``, the CNN's 432 x 10 dense ``W``).
:func:`state_errors` measures the formats on a real state (the float32 run's ``m`` and ``v``
of ``W1``, stored as each format would store them). ``run_quantized_state`` is the tour's
chapter; ``python -m optimlab.lab.experiments.quantized_state --table`` prints the README's
table (``--save FILE`` writes the measured numbers as JSON, ``--table-from FILE`` prints the
table from such a file without training).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from dataclasses import dataclass, field

import numpy as np

from ... import optimizers, quantization
from ..._validation import check_choice, check_int
from .. import problems
from . import Plot, Result, Table
from . import claims as C
from ._state_formats import (
    FormatError,
    LayerState,
    block_extremes,
    block_max_exact,
    error_cdf,
    layer_state,
    median_by_position,
    state_errors,
    stored,
)
from ._text import fmt, pct

__all__ = [
    "COLUMNS",
    "MODELS",
    "Comparison",
    "FormatError",
    "LayerState",
    "Quality",
    "Run",
    "block_extremes",
    "block_max_exact",
    "layer_state",
    "main",
    "markdown",
    "quality",
    "run_quantized_state",
    "state_errors",
    "stored",
    "train",
]

#: the two models: name -> (problem factory, its keyword arguments)
MODELS = {"mlp": ("digits_mlp", {"hidden": 128}), "cnn": ("digits_cnn", {"filters": 48})}
#: the formats this experiment trains with
STATE_DTYPES = ("float32", "bfloat16", "int8", "int4")
#: Adam at Keras's defaults (learning rate 1e-3, betas 0.9 / 0.999, epsilon 1e-7)
LEARNING_RATE = 1e-3
BATCH = 64
#: held-out rows of the 1797 digits (the rest is trained on)
TEST_ROWS = 360
EPOCHS, QUICK_EPOCHS = 20, 4
#: the layer whose state the chapter looks at
LAYER = ("mlp", "W1")


def model(name: str):
    """The problem of model ``name`` ("mlp": digits MLP 64-128-10, tanh; "cnn": digits CNN
    with 48 filters): :func:`optimlab.lab.problems.get`, built once (its data are
    read-only)."""
    return _model(check_choice("model", name, tuple(MODELS)))


@functools.cache
def _model(name: str):
    problem_name, kwargs = MODELS[name]
    return problems.get(problem_name, **kwargs)


@contextlib.contextmanager
def one_numba_thread():
    """numba's parallel loops on one thread while open (restored after): the moments of
    these small tensors fill one task of the narrow kernels, and waking a thread pool for it
    costs more than the step. The results do not depend on it (every operation is per
    element, and a block's maximum is exact in any order)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def split(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train rows, test rows)``: a permutation of ``n_samples`` rows from ``seed``'s first
    child stream, the first :data:`TEST_ROWS` of it held out (both sorted)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    order = rng.permutation(n_samples)
    return np.sort(order[TEST_ROWS:]), np.sort(order[:TEST_ROWS])


def batches(train_rows: np.ndarray, epochs: int, seed: int) -> list[list[np.ndarray]]:
    """Per epoch, the mini-batches of :data:`BATCH` training rows (the last one shorter): a
    new permutation each epoch from ``seed``'s second child stream. Every state dtype sees
    these very batches."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    out = []
    for _ in range(epochs):
        order = rng.permutation(train_rows)
        out.append([order[i : i + BATCH] for i in range(0, order.size, BATCH)])
    return out


@dataclass
class Run:
    """One training run: the loss on the training rows before the first update and after
    every epoch (``losses``, epochs + 1 values), the held-out accuracy at the same points,
    the final float32 parameters and the optimizer's ``state_dict()`` at the end."""

    model: str
    state_dtype: str
    losses: np.ndarray
    accuracies: np.ndarray
    params: dict[str, np.ndarray]
    state: dict

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def final_accuracy(self) -> float:
        return float(self.accuracies[-1])


def accuracy(problem, params, rows) -> float:
    """The share of ``rows`` whose largest logit is their label."""
    logits = problem._logits(problem._check_params(params), rows)
    return float(np.mean(np.argmax(logits, axis=1) == problem.labels[rows]))


def _train(name: str, optimizer, epochs: int, seed: int) -> Run:
    """Train model ``name`` with ``optimizer`` (fresh): float32 parameters from
    ``init_params(seed)``, each update ``optimizer.apply_gradients`` with the batch's mean
    gradient (computed in float64 by backpropagation, rounded to float32)."""
    problem = model(name)
    train_rows, test_rows = split(problem.n_samples, seed)
    params = {k: np.asarray(v, np.float32) for k, v in problem.init_params(seed).items()}
    names = list(problem.shapes)
    losses = [problem.loss(params, train_rows)]
    accuracies = [accuracy(problem, params, test_rows)]
    for epoch in batches(train_rows, epochs, seed):
        for rows in epoch:
            _, grads = problem.loss_and_grad(params, rows)
            optimizer.apply_gradients([(grads[k].astype(np.float32), params[k]) for k in names])
        losses.append(problem.loss(params, train_rows))
        accuracies.append(accuracy(problem, params, test_rows))
    return Run(
        name,
        optimizer.state_dtype,
        np.array(losses),
        np.array(accuracies),
        params,
        optimizer.state_dict(),
    )


def train(name: str, state_dtype: str, *, epochs: int, seed: int = 0,
          engine: str = "auto") -> Run:  # fmt: skip
    """Model ``name`` ("mlp" or "cnn") trained ``epochs`` epochs by
    ``optimlab.Adam(learning_rate=1e-3, state_dtype=state_dtype, engine=engine)`` on the
    batches of :func:`batches` (``seed``: the initial parameters, the split and the batch
    order): a :class:`Run`."""
    name = check_choice("model", name, tuple(MODELS))
    state_dtype = check_choice("state_dtype", state_dtype, STATE_DTYPES)
    epochs = check_int("epochs", epochs, 1)
    seed = check_int("seed", seed, 0)
    opt = optimizers.Adam(learning_rate=LEARNING_RATE, state_dtype=state_dtype, engine=engine)
    with one_numba_thread():
        return _train(name, opt, epochs, seed)


def narrow_tensors(run: Run, problem) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of the parameters whose moments ``run``'s optimizer stored narrow (its
    saved ``m`` is not float32)."""
    slots = run.state["slots"]
    return [
        (name, shape)
        for i, (name, shape) in enumerate(problem.shapes.items())
        if slots[f"m/{i}"].dtype != np.float32
    ]


@dataclass
class Comparison:
    """The four runs of one model and how each narrow run compares with float32's:
    ``gap_abs[d] = max_e |L_d(e) - L_float32(e)|`` and ``gap_rel[d] = max_e |L_d(e) -
    L_float32(e)| / L_float32(e)`` over the points of the loss curve (epochs 0..E)."""

    model: str
    title: str
    runs: dict[str, Run]
    narrow: list[tuple[str, tuple[int, ...]]]
    narrow_share: float
    parameters: int
    gap_abs: dict[str, float] = field(default_factory=dict)
    gap_rel: dict[str, float] = field(default_factory=dict)


@dataclass
class Quality:
    """:func:`quality`'s result: per model a :class:`Comparison`, the epochs and seed."""

    comparisons: dict[str, Comparison]
    epochs: int
    seed: int

    def rows(self) -> list[list]:
        """Per model and state dtype: model, dtype, final loss, final accuracy, largest
        absolute and relative loss gap to float32, share of parameters with narrow state,
        the narrow tensors."""
        out = []
        for c in self.comparisons.values():
            tensors = ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in c.narrow)
            for dtype, run in c.runs.items():
                narrow = dtype != "float32"
                out.append([
                    c.title, dtype, run.final_loss, run.final_accuracy,
                    c.gap_abs[dtype], c.gap_rel[dtype],
                    c.narrow_share if narrow else 0.0, tensors if narrow else "none",
                ])  # fmt: skip
        return out

    def as_json(self) -> dict:
        """The numbers of :meth:`rows` as JSON (what ``--save`` writes)."""
        return {"epochs": self.epochs, "seed": self.seed, "columns": list(COLUMNS),
                "rows": self.rows()}  # fmt: skip


COLUMNS = (
    "model",
    "state",
    "final loss",
    "test accuracy",
    "max loss gap",
    "max relative gap",
    "parameters with narrow state",
    "narrow tensors",
)


def quality(epochs: int = EPOCHS, seed: int = 0) -> Quality:
    """Both models trained with each of float32, bfloat16, int8 and int4 state
    (:func:`train`, same seed and batches), compared with the float32 run."""
    epochs = check_int("epochs", epochs, 1)
    seed = check_int("seed", seed, 0)
    comparisons = {}
    for name in MODELS:
        problem = model(name)
        runs = {d: train(name, d, epochs=epochs, seed=seed) for d in STATE_DTYPES}
        narrow = narrow_tensors(runs["int8"], problem)
        total = sum(int(np.prod(s)) for s in problem.shapes.values())
        c = Comparison(name, problem.title, runs, narrow,
                       sum(int(np.prod(s)) for _, s in narrow) / total, total)  # fmt: skip
        base = runs["float32"].losses
        for d, run in runs.items():
            diff = np.abs(run.losses - base)
            c.gap_abs[d] = float(np.max(diff))
            c.gap_rel[d] = float(np.max(diff / base))
        comparisons[name] = c
    return Quality(comparisons, epochs, seed)


# -- the chapter ---------------------------------------------------------------------------


def run_quantized_state(quick: bool = False) -> Result:
    """The quality table of :func:`quality` (``QUICK_EPOCHS`` epochs for the quick tour,
    ``EPOCHS`` for the full one), the formats measured on the float32 run's ``m`` and ``v``
    of the MLP's ``W1`` (:func:`layer_state`), and the four loss curves of each model."""
    epochs = QUICK_EPOCHS if quick else EPOCHS
    q = quality(epochs)
    mlp = q.comparisons["mlp"]
    with one_numba_thread():
        plain = _train("mlp", optimizers.Adam(learning_rate=LEARNING_RATE), epochs, 0)
    same_as_plain = all(
        np.array_equal(plain.params[k], mlp.runs["float32"].params[k]) for k in plain.params
    )
    index = list(model("mlp").shapes).index(LAYER[1])
    slots = mlp.runs["float32"].state["slots"]
    layer = layer_state(slots[f"m/{index}"], slots[f"v/{index}"])
    numbers = _numbers(q, layer, index)
    return Result(
        key="quantized_state",
        title="Beyond the lecture: what 8 bits do to Adam's state",
        chapter="",
        summary=_summary(q, layer),
        equations=[
            r"s_b = \max_{i \in b} |x_i|,\qquad k_i = \operatorname{argmin}_k"
            r" |\mathrm{code}_k - x_i / s_b|,\qquad \tilde x_i = \mathrm{code}_{k_i}\, s_b",
            r"m_t = \beta_1 \tilde m_{t-1} + (1 - \beta_1) g_t,\quad"
            r" v_t = \beta_2 \tilde v_{t-1} + (1 - \beta_2) g_t^2,\quad"
            r" \theta_t = \theta_{t-1} - \eta\, \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}"
            r" \frac{m_t}{\sqrt{v_t} + \hat\epsilon}",
            r"\text{relative error} = |\tilde x - x| / |x|",
        ],
        numbers=numbers,
        tables=_tables(q, layer),
        figures=_figures(q, layer),
        claims=_claims(q, layer, same_as_plain),
        settings={
            "epochs": epochs,
            "batch": BATCH,
            "learning rate": LEARNING_RATE,
            "held-out rows": TEST_ROWS,
            "seed": 0,
        },
    )


def _worst_accuracy_gap(q: Quality, formats=("bfloat16", "int8")) -> float:
    """The largest |final test accuracy - float32's| of the runs of ``formats`` (bfloat16 and
    int8 by default), in percentage points."""
    return max(
        100 * abs(c.runs[d].final_accuracy - c.runs["float32"].final_accuracy)
        for c in q.comparisons.values()
        for d in formats
    )


def _accuracy_change(c: Comparison, d: str) -> float:
    """The final test accuracy of ``c``'s run of ``d`` minus float32's, in points."""
    return 100 * (c.runs[d].final_accuracy - c.runs["float32"].final_accuracy)


def _numbers(q: Quality, layer: LayerState, index: int) -> dict:
    """The chapter's measured numbers, by name."""
    numbers: dict = {}
    for c in q.comparisons.values():
        for d, run in c.runs.items():
            numbers[f"{c.model} {d}: final loss"] = run.final_loss
            numbers[f"{c.model} {d}: final test accuracy"] = run.final_accuracy
            numbers[f"{c.model} {d}: max loss gap"] = c.gap_abs[d]
            numbers[f"{c.model} {d}: max relative loss gap"] = c.gap_rel[d]
        numbers[f"{c.model}: share of parameters with narrow state"] = c.narrow_share
    for (slot, d), err in layer.errors.items():
        numbers[f"{slot} {d}: median relative error"] = err.quantile(0.5)
        numbers[f"{slot} {d}: 99th percentile relative error"] = err.quantile(0.99)
        numbers[f"{slot} {d}: nonzero entries flushed to 0"] = err.flushed
    numbers["v int8: entries below half the least code times the scale"] = layer.below
    numbers["v int8: median relative error, within a decade of the scale"] = layer.near_top
    numbers["v int8: median relative error, over three decades below the scale"] = layer.far_below
    numbers["v: largest / smallest block scale"] = layer.spread["v"]
    numbers["m: largest / smallest block scale"] = layer.spread["m"]
    numbers["m: blocks whose largest entry is negative"] = layer.extremes["negative"]
    numbers["largest test accuracy difference to float32 (points)"] = _worst_accuracy_gap(q)
    numbers["int4: largest test accuracy difference to float32 (points)"] = _worst_accuracy_gap(
        q, ("int4",)
    )
    own = q.comparisons["mlp"].runs["int8"].state["slots"]
    own_v = quantization.dequantize(own[f"v/{index}"], own[f"v.scales/{index}"], False)
    numbers["int8 run: entries of its own v of W1 that read back as 0"] = int(np.sum(own_v == 0))
    return numbers


def _tensor_list(c: Comparison) -> str:
    return " and ".join(f"`{n}` ({' x '.join(map(str, s))})" for n, s in c.narrow)


def _summary(q: Quality, layer: LayerState) -> str:
    """The chapter's text, every number from the runs and the layer's measurement."""
    mlp, cnn = q.comparisons["mlp"], q.comparisons["cnn"]
    unsigned, signed = quantization.dynamic_code(False), quantization.dynamic_code(True)
    least_signed = signed[int(np.flatnonzero(signed == 0)[0]) + 1]
    e = layer.errors
    bf_rel = max(c.gap_rel["bfloat16"] for c in q.comparisons.values())
    int8_lower = all(
        c.runs["int8"].final_loss < c.runs["float32"].final_loss for c in q.comparisons.values()
    )
    return (
        "Adam keeps two float32 moments per parameter, 8 bytes of state for 4 of weights. "
        '`state_dtype="bfloat16"` stores them in 2 bytes each (round to nearest even: '
        "8 significant bits, 7 of them stored, a relative error of at most $2^{-8}$); "
        '`state_dtype="int8"` in 1 byte each plus a float32 scale per block of 256, as '
        "bitsandbytes' 8-bit Adam and torchao's `AdamW8bit` (Dettmers et al. 2022): each "
        "block is divided by its largest |value| and every entry rounded to the nearest of "
        "256 values of a dynamic-exponent code, dense near 0 and sparse near 1, signed for "
        "$m$, unsigned for $v$. Each step reads the moments back as float32, updates them, "
        "moves the parameter by the float32 moments and stores them narrow again. Tensors "
        f"under 4096 elements keep float32 state (both peers do): here {_tensor_list(mlp)} "
        f"of the MLP 64-128-10 ({pct(mlp.narrow_share)} of its {fmt(mlp.parameters)} "
        f"parameters) and {_tensor_list(cnn)} of the CNN ({pct(cnn.narrow_share)} of "
        f"{fmt(cnn.parameters)}).\n\n"
        f"**Training** (Adam, learning rate {LEARNING_RATE:g}, {q.epochs} epochs of batches "
        f"of {BATCH} on {fmt(model('mlp').n_samples - TEST_ROWS)} digits, {TEST_ROWS} held "
        "out, one seed, the same batches for every state): bfloat16 state follows the "
        f"float32 loss curve to {pct(bf_rel)} at worst; int8 state moves further, "
        f"{pct(mlp.gap_rel['int8'])} on the MLP and {pct(cnn.gap_rel['int8'])} on the CNN at "
        "the worst epoch, "
        + (
            "ending lower than float32 on both (one seed and one learning rate: not evidence "
            "that 8 bits train better)"
            if int8_lower
            else "in either direction"
        )
        + f". No final test accuracy is more than {fmt(_worst_accuracy_gap(q))} percentage "
        f"points from float32's (one held-out digit is {fmt(100 / TEST_ROWS)} points): on "
        "these models, 8 bits of state cost no measurable quality. "
        '`state_dtype="int4"` (torchao\'s AdamW4bit: half a byte per moment, a scale per '
        "block of 128, 16 codes, $v$'s on the grid $k/16$ of its scale with no 0) moves "
        f"further still: {pct(mlp.gap_rel['int4'])} on the MLP and "
        f"{pct(cnn.gap_rel['int4'])} on the CNN at the worst epoch; its final test accuracy "
        f"is {fmt(_accuracy_change(mlp, 'int4'))} points from float32's on the MLP and "
        f"{fmt(_accuracy_change(cnn, 'int4'))} on the CNN"
        + (
            ": 4 bits of state cost measurable quality here."
            if _worst_accuracy_gap(q, ("int4",)) >= 1.0
            else "."
        )
        + "\n\n"
        "**The state itself.** The float32 run's moments of the MLP's `W1` after the last "
        f"step, {fmt(layer.size)} entries, of which {fmt(layer.zeros)} are exactly 0 (pixels "
        "that are 0 in every training image: their gradient is 0, and every format keeps 0 "
        "exactly). On the others, bfloat16's relative error has a median of "
        f"{fmt(e['m', 'bfloat16'].quantile(0.5))} ($m$) and "
        f"{fmt(e['v', 'bfloat16'].quantile(0.5))} ($v$); int8's median is "
        f"{fmt(e['m', 'int8'].quantile(0.5))} ($m$) and {fmt(e['v', 'int8'].quantile(0.5))} "
        f"($v$), its 99th percentile {fmt(e['m', 'int8'].quantile(0.99))} and "
        f"{fmt(e['v', 'int8'].quantile(0.99))}. The error depends on where an entry sits in "
        "its block: the code's decade $[10^{-j-1}, 10^{-j}]$ of the scale holds $2^{6-j}$ "
        "values in the signed code (twice as many in the unsigned), so the steps are fine "
        "near the scale and coarse far below it. For $v$, the median int8 error is "
        f"{fmt(layer.near_top)} for entries within a decade of their block's scale and "
        f"{fmt(layer.far_below)} for entries more than three decades below it. The unsigned "
        f"code's least positive value is {fmt(unsigned[1])} times the block's scale, so a "
        f"$v$ entry below half of it is stored as 0: {fmt(e['v', 'int8'].flushed)} of the "
        f"nonzero $v$ entries are (all {fmt(layer.below)} below that line), and "
        f"{fmt(e['m', 'int8'].flushed)} of $m$'s (the signed code's least is "
        f"{fmt(least_signed)} times the scale).\n\n"
        "The largest |entry| of each block is its scale and is stored exactly where the "
        "code holds it: always for $v$ (the unsigned code ends at 1), and for $m$ where it "
        "is positive; the signed code has no $-1$, so in the "
        f"{fmt(layer.extremes['negative'])} of {fmt(layer.extremes['blocks'])} blocks of $m$ "
        f"whose largest entry is negative it is stored as {fmt(signed[0])} times the scale. "
        f"The scales span a factor of {fmt(layer.spread['v'])} from the smallest block to "
        f"the largest for $v$ and {fmt(layer.spread['m'])} for $m$: with one scale for the "
        "whole tensor, the small blocks would sit decades lower in the code, where its steps "
        "are coarse."
    )


def _claims(q: Quality, layer: LayerState, same_as_plain: bool) -> list:
    """The chapter's statements as checks on this run."""
    mlp, cnn = q.comparisons["mlp"], q.comparisons["cnn"]
    e, x = layer.errors, layer.extremes
    signed = quantization.dynamic_code(True)
    differs = all(
        not np.array_equal(c.runs[d].params[k], c.runs["float32"].params[k])
        for c in q.comparisons.values()
        for d in ("bfloat16", "int8")
        for k, _ in c.narrow
    )
    bf_near = layer.median_error("v", "bfloat16", 0.1, np.inf)
    bf_far = layer.median_error("v", "bfloat16", 0.0, 1e-3)
    zeros_kept = all(
        np.all(stored(values, d, signed_code)[values == 0] == 0)
        for values, signed_code in ((layer.m, True), (layer.v, False))
        for d in ("bfloat16", "int8")
    )
    return [
        C.check(
            'state_dtype="float32" is plain Adam: the MLP\'s final parameters equal those of '
            "optimlab.Adam() without the argument, bit for bit",
            same_as_plain,
        ),
        C.check(
            "The quantization really happened: every narrow run ends with different "
            "parameters than float32's in each narrow tensor",
            differs,
        ),
        C.check(
            "Only tensors of at least 4096 elements have narrow state: the MLP's W1 "
            "(64 x 128) and the CNN's W (432 x 10)",
            mlp.narrow == [("W1", (64, 128))] and cnn.narrow == [("W", (432, 10))],
            f"MLP {mlp.narrow}, CNN {cnn.narrow}",
        ),
        C.at_most(
            "bfloat16 state keeps the loss curve within 1% (relative) of float32's at every "
            "epoch, on both models",
            max(c.gap_rel["bfloat16"] for c in q.comparisons.values()),
            0.01,
        ),
        C.check(
            "int8 state moves the loss curve further from float32's than bfloat16 does, on "
            "both models",
            all(c.gap_abs["int8"] > c.gap_abs["bfloat16"] for c in q.comparisons.values()),
            "; ".join(
                f"{n}: int8 {fmt(c.gap_abs['int8'])}, bfloat16 {fmt(c.gap_abs['bfloat16'])}"
                for n, c in q.comparisons.items()
            ),
        ),
        C.at_most(
            "Every bfloat16 and int8 run's final test accuracy is within 1 percentage point "
            "of float32's",
            _worst_accuracy_gap(q),
            1.0,
        ),
        C.check(
            "int4 state moves the loss curve further from float32's than int8 does, on both models",
            all(c.gap_abs["int4"] > c.gap_abs["int8"] for c in q.comparisons.values()),
            "; ".join(
                f"{n}: int4 {fmt(c.gap_abs['int4'])}, int8 {fmt(c.gap_abs['int8'])}"
                for n, c in q.comparisons.items()
            ),
        ),
        C.check(
            "Every float32, bfloat16 and int8 run learns: its final loss is below a third of "
            "its initial loss",
            all(
                r.final_loss < r.losses[0] / 3
                for c in q.comparisons.values()
                for d, r in c.runs.items()
                if d != "int4"
            ),
        ),
        C.check(
            "The int4 runs learn too: their final loss is below half their initial loss",
            all(
                c.runs["int4"].final_loss < c.runs["int4"].losses[0] / 2
                for c in q.comparisons.values()
            ),
            "; ".join(
                f"{n}: {fmt(c.runs['int4'].final_loss / c.runs['int4'].losses[0])} of the initial"
                for n, c in q.comparisons.items()
            ),
        ),
        C.at_most(
            "bfloat16 storage of m and v: no relative error above 2^-8 (round to nearest, "
            "8 significant bits)",
            max(e[s, "bfloat16"].largest for s in ("m", "v")),
            2.0**-8,
        ),
        C.check(
            "int8 storage keeps the largest entry of every block of v exactly, and of every "
            "block of m whose largest |entry| is positive; a negative one is stored as "
            f"{fmt(signed[0])} times the scale (the signed code has no -1)",
            block_max_exact(layer.v, False)
            and x["exact"] + x["negative"] == x["blocks"]
            and x["negative_as_code_0"],
            f"m: {x['exact']} blocks exact, {x['negative']} negative of {x['blocks']}",
        ),
        C.check(
            "int8's median relative error is larger than bfloat16's for both moments",
            all(e[s, "int8"].quantile(0.5) > e[s, "bfloat16"].quantile(0.5) for s in "mv"),
        ),
        C.check(
            "int8's error grows towards 0: v's median error more than three decades below "
            "the block's scale exceeds 3 times its median within a decade of the scale",
            layer.far_below > 3 * layer.near_top,
            f"{fmt(layer.far_below)} against {fmt(layer.near_top)}",
        ),
        C.check(
            "bfloat16's error does not depend on the place in the block: v's median error "
            "more than three decades below the scale is within a factor of 2 of its median "
            "within a decade of it",
            0.5 <= bf_far / bf_near <= 2.0,
            f"{fmt(bf_far)} against {fmt(bf_near)}",
        ),
        C.check(
            "The v entries int8 stores as 0 are exactly those below half the unsigned code's "
            "least positive value times their block's scale",
            e["v", "int8"].flushed == layer.below,
            f"{e['v', 'int8'].flushed} flushed, {layer.below} below the line",
        ),
        C.check("Every exact 0 of m and v stays 0 in both formats", zeros_kept),
    ]


def _tables(q: Quality, layer: LayerState) -> list:
    """The quality table and the formats' errors on the layer."""
    e = layer.errors
    return [
        Table(
            f"Adam on the digits, {q.epochs} epochs, batch {BATCH}, one seed, the same "
            "batches: each state dtype against float32",
            COLUMNS,
            [
                [title, d, loss, accuracy_cell(acc), gap, pct(rel), pct(share), tensors]
                for title, d, loss, acc, gap, rel, share, tensors in q.rows()
            ],
            note="loss: cross-entropy on the training rows; accuracy: the held-out "
            f"{TEST_ROWS} rows; gaps: the largest over epochs 0..{q.epochs} of |loss - "
            "float32's loss| (relative: divided by float32's loss); narrow state: the "
            "parameters whose m and v are stored in the narrow format (tensors of at "
            "least 4096 elements).",
        ),
        Table(
            "The float32 run's m and v of W1 (64 x 128) stored as bfloat16 and int8",
            [
                "moment",
                "format",
                "median relative error",
                "99th percentile",
                "largest",
                "nonzero entries stored as 0",
            ],
            [
                [
                    s,
                    d,
                    e[s, d].quantile(0.5),
                    e[s, d].quantile(0.99),
                    e[s, d].largest,
                    e[s, d].flushed,
                ]
                for s in ("m", "v")
                for d in ("bfloat16", "int8")
            ],  # fmt: skip
            note=f"over the {fmt(layer.size - layer.zeros)} nonzero entries of "
            f"{fmt(layer.size)} (the other {fmt(layer.zeros)} are exactly 0 in m and v "
            "alike, and stay 0).",
        ),
    ]


def _figures(q: Quality, layer: LayerState) -> dict:
    """The loss curves of each model, the formats' error distributions, int8's error against
    the entry's place in its block, and the per-block scales."""
    from ...viz import lines_figure

    e = layer.errors
    x = np.arange(q.epochs + 1)
    figures = {}
    for name, c in q.comparisons.items():
        figures[f"curves_{name}"] = Plot(
            lines_figure(
                {f"{d} state": (x, r.losses) for d, r in c.runs.items()},
                xlabel="epoch",
                ylabel="training cross-entropy",
                title=f"Adam with float32, bfloat16, int8 and int4 state: {c.title}",
            ),
            "the four lines start together; bfloat16's lies on float32's (at most "
            f"{pct(c.gap_rel['bfloat16'])} apart), int8's parts from them by at most "
            f"{pct(c.gap_rel['int8'])} and int4's by at most {pct(c.gap_rel['int4'])} "
            "(relative) at any epoch.",
        )
    ratio = {s: e[s, "int8"].quantile(0.5) / e[s, "bfloat16"].quantile(0.5) for s in "mv"}
    cdf = {f"{s} {d}": error_cdf(e[s, d].relative) for s in "mv" for d in ("bfloat16", "int8")}
    figures["errors"] = Plot(
        lines_figure(
            cdf,
            xlabel="relative error |stored - x| / |x|",
            ylabel="share of nonzero entries at or below",
            title="How bfloat16 and int8 store the float32 run's m and v of W1",
            log_x=True,
            log_y=False,
        ),
        "each line is the distribution of one format's error on one moment: bfloat16's "
        f"end before 2^-8 = {fmt(2.0**-8)}; int8's medians are {fmt(ratio['m'])} (m) and "
        f"{fmt(ratio['v'])} (v) times bfloat16's"
        + (", and v's int8 line reaches 1 where entries were stored as 0." if e["v", "int8"]
           .flushed else "."),
    )  # fmt: skip
    edges = np.logspace(-9, 0, 28)
    near = {
        f"{s} {d}": median_by_position(e[s, d], edges) for s in "mv" for d in ("bfloat16", "int8")
    }
    least = quantization.dynamic_code(False)[1]
    figures["near_zero"] = Plot(
        lines_figure(
            near,
            xlabel="|x| / its block's scale",
            ylabel="median relative error",
            title="The error against the entry's place in its int8 block",
            log_x=True,
        ),
        "bfloat16's error does not depend on the place (its lines are flat); int8's does: "
        f"near 1 (the block's largest entries) v's median error is {fmt(layer.near_top)} "
        "within a decade; it grows towards 0 decade by decade (the teeth: the code's points "
        "are spread evenly within each decade), and is 1 (stored as 0) below half the "
        f"code's least value, {fmt(least / 2)} of the scale for v.",
    )
    m_scales, v_scales = e["m", "int8"].scales, e["v", "int8"].scales
    blocks = np.arange(v_scales.size)
    figures["scales"] = Plot(
        lines_figure(
            {"m block scales": (blocks, m_scales), "v block scales": (blocks, v_scales)},
            xlabel=f"block of {quantization.BLOCK_SIZE} entries of W1 (row-major)",
            ylabel="scale = largest |entry| of the block",
            title="One float32 scale per block of 256: int8's per-block scales of W1",
        ),
        f"the scales of v span a factor of {fmt(layer.spread['v'])}, of m "
        f"{fmt(layer.spread['m'])}: one scale for the whole tensor would push the small "
        "blocks towards the code's coarse bottom.",
    )
    return figures


# -- the README's table --------------------------------------------------------------------


def accuracy_cell(share: float) -> str:
    """An accuracy as a table shows it: a percentage to two decimals (one held-out digit is
    0.28 points)."""
    return f"{100 * share:.2f}%"


def markdown(table: dict) -> str:
    """The Markdown table of :meth:`Quality.as_json`'s ``table``."""
    lines = [
        "| " + " | ".join(table["columns"]) + " |",
        "|" + "|".join("---" for _ in table["columns"]) + "|",
    ]
    for title, dtype, loss, acc, gap, rel, share, tensors in table["rows"]:
        cells = [title, dtype, fmt(loss, 4), accuracy_cell(acc), fmt(gap, 3), pct(rel),
                 pct(share) if share else "0%", tensors]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Adam (learning rate {LEARNING_RATE:g}, Keras's defaults otherwise), {table['epochs']} "
        f"epochs of batches of {BATCH}, seed {table['seed']}, {TEST_ROWS} digits held out; "
        "gaps: the largest over the epochs of |loss - float32's loss|."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``--table`` (train and print the Markdown table), ``--save FILE`` (train and write the
    numbers as JSON), ``--table-from FILE`` (print the table of a saved file);
    ``--epochs N`` (default 20)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m optimlab.lab.experiments.quantized_state")
    parser.add_argument("--table", action="store_true", help="train and print the table")
    parser.add_argument("--save", metavar="FILE", help="train and write the numbers as JSON")
    parser.add_argument("--table-from", metavar="FILE", help="print the table of a saved run")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)
    if args.table_from:
        with open(args.table_from, encoding="utf-8") as f:
            print(markdown(json.load(f)))
        return 0
    if not (args.table or args.save):
        parser.error("give --table, --save FILE or --table-from FILE")
    if args.epochs < 1:
        parser.error(f"--epochs must be an integer >= 1, got {args.epochs}")
    from . import _one_blas_thread

    with _one_blas_thread():
        table = quality(args.epochs).as_json()
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump(table, f, indent=1)
            f.write("\n")
    if args.table:
        print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
