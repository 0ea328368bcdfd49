"""Step time of optimlab's torch and optax faces against the frameworks' own optimizers.

Two parts, each on one model in float32, each variant on its own copy of the same weights and
fed the same batches in the same order:

``torch``
    ``optimlab.torch.<Optimizer>`` under each ``preset`` ("torch", "keras", "optax": the fused
    numba kernel on the tensors' memory, whichever preset's formulas) against
    ``torch.optim.<Optimizer>`` by default (``foreach=None, fused=None``: on CPU the for-loop
    over tensors), with ``foreach=True``, and with ``fused=True`` where torch has it on CPU
    (SGD, Adagrad, Adam, AdamW). Timed: a whole ``training step`` (``zero_grad()``, forward,
    cross-entropy, ``backward()``, ``optimizer.step()``: :class:`torch_training.Runner`) and
    ``optimizer.step`` alone (repeated on the gradients of the last backward). The model is
    ``optimlab.torch.examples.wide_mlp()`` (9.45 million parameters) on batches of 64 random
    inputs (:func:`torch_training.build_model`); ``--models "digits MLP"`` adds the digits MLP.
``optax``
    ``optimlab.optax.<factory>`` (its default ``preset="optax"``) against optax's own
    (``optax.adam``, ..., ``optax.contrib.schedule_free_adamw``), each inside a
    ``jax.jit``-compiled function whose parameters and state are donated. Timed: the whole
    ``training step`` (forward, cross-entropy, ``jax.value_and_grad``, ``tx.update``,
    ``optax.apply_updates``) and the ``update`` alone (``tx.update`` and
    ``optax.apply_updates`` on fixed gradients), each until ``block_until_ready``. The model
    is the same MLP in JAX (1024 -> 2048 -> 2048 -> 1024 -> 1024 -> 10, torch's default
    initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from a seeded NumPy generator) on
    batches of 64 seeded random inputs. The two variants' agreement is measured apart from
    the timing (:func:`agreement`): from the same weights, ``AGREEMENT_STEPS`` training steps
    on the same batches in float32 (the largest difference after each step, in ulps of the
    largest weight of its tensor) and in float64 (``jax.enable_x64``). The parameters after
    the timed steps are compared too ("largest weight difference" in the JSON).

    Why the float32 gap after the timed steps is large (measured 2026-12-03 on this MLP): not a
    difference of the rules, an amplification by the model. After one training step the two
    variants are 1 ulp apart (Schedule-Free 2) in float32 and 3.5e-18 to 6.9e-18 (1 or 2 ulps)
    in float64: optax writes u = -lr * m_hat / (sqrt(v_hat) + eps) and p + u, optimlab
    p - lr * ..., another rounding of the step. From the second step on, a gradient that is
    a cancellation (tiny, carrying the weights' 1-ulp gap at its full relative size) is made a
    whole step by a scale-free update, in both precisions alike: Adam, AdamW, Nadam, Adamax
    and Schedule-Free are 480 to 1700 ulps (1.3e-6 to 3.1e-6) apart in float32 after step 2 and
    2.4e-15 to 7.4e-15 in float64 (the same factor, about 1000); Lion's sign flips for one
    element in float32 (2 lr = 2e-4 after step 2; none in float64: 2.8e-17 after 5 steps).
    Later the float32 gap jumps (rmsprop from 2.6e-8 after 10 steps to 3.4e-4 after 20,
    adadelta from 1.1e-8 to 3.5e-3: presumably a ReLU whose input lies within the gap of 0,
    on in one variant only): after 68 training steps rmsprop is 2.7e-3, adadelta 4.7e-2, lion
    1.3e-2, adamw 8.7e-4 apart in float32, and 2.1e-15, 3.9e-16, 2.6e-16, 9.9e-12 in
    float64. After 5 steps every float64 gap is within 2e-14 (nadam 1.8e-14): the table shows
    the float32 ulps after 1 and 5 steps and the float64 gap after 5.

The machine is noisy (other processes share its cores; the load average before and after
each case is recorded), so the variants are measured alternately: after warm-up steps (the
first optimlab step loads or compiles the numba kernels; the first jitted call compiles),
each round times a few steps of every variant in turn, the order rotating from round to
round; a variant's figure is the median over rounds of its per-round median. A ratio is
``framework's own / optimlab``, the median over rounds of the two per-round medians' ratio
(paired within a round, so that a change of the load between rounds cancels): above 1,
optimlab is faster.

    python benchmarks/faces_speed.py                      # both parts (a few minutes)
    python benchmarks/faces_speed.py --parts optax --optimizers adam lion
    python benchmarks/faces_speed.py --quick              # a smoke test: seconds, no clean timing
    python benchmarks/faces_speed.py --json docs/faces_speed.json
    python benchmarks/faces_speed.py --table-from docs/faces_speed.json   # the README's tables
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import machine, save_json  # noqa: E402

BATCH = 64
PRESETS = ("torch", "keras", "optax")
TORCH_VARIANTS = tuple(f"optimlab {p}" for p in PRESETS) + (
    "torch default",
    "torch foreach",
    "torch fused",
)
TORCH_OWN = TORCH_VARIANTS[len(PRESETS) :]
# the torch.optim arguments of each torch variant ("torch default": foreach=None, fused=None)
TORCH_ONLY = {
    "torch default": {},
    "torch foreach": {"foreach": True},
    "torch fused": {"fused": True},
}
TORCH_FUSED = {"SGD", "Adagrad", "Adam", "AdamW"}
TORCH_TIMED = ("training step", "optimizer.step")

# optimizer: its arguments, the same for optimlab.torch (every preset) and torch.optim
TORCH_OPTIMIZERS = {
    "SGD": {"lr": 1e-2, "momentum": 0.9},
    "Adagrad": {"lr": 1e-2},
    "RMSprop": {"lr": 1e-3},
    "Adam": {"lr": 1e-3},
    "AdamW": {"lr": 1e-3},
    "NAdam": {"lr": 2e-3},
    "Adamax": {"lr": 2e-3},
    "Adadelta": {"lr": 1.0},
    "RAdam": {"lr": 1e-3},
    "Rprop": {"lr": 1e-2},
    "ASGD": {"lr": 1e-2},
}
TORCH_MODELS = ("wide MLP", "digits MLP")

OPTAX_VARIANTS = ("optimlab", "optax")
OPTAX_TIMED = ("training step", "update")
# factory: (learning rate, other arguments), the same for optimlab.optax and optax
OPTAX_OPTIMIZERS = {
    "sgd": (1e-2, {"momentum": 0.9}),
    "adagrad": (1e-2, {}),
    "rmsprop": (1e-3, {}),
    "adam": (1e-3, {}),
    "adamw": (1e-3, {}),
    "nadam": (2e-3, {}),
    "adamax": (2e-3, {}),
    "adadelta": (1.0, {}),
    "radam": (1e-3, {}),
    "rprop": (1e-2, {}),
    "lion": (1e-4, {}),
    "lamb": (1e-3, {}),
    "schedule_free_adamw": (1e-3, {}),
}
JAX_WIDTHS = (1024, 2048, 2048, 1024, 1024, 10)  # wide_mlp()'s
AGREEMENT_STEPS = 5  # the training steps of both optax variants that agreement() compares

# (rounds, timed steps per round and variant, warm-up steps)
FULL_PLAN = {"wide MLP": (11, 3, 2), "digits MLP": (11, 20, 10), "jax MLP": (11, 3, 2)}
QUICK_PLAN = (2, 2, 1)
QUICK = {
    "torch": ("digits MLP", ["SGD", "Adam"]),
    "optax": ((64, 32, 10), ["sgd", "adam"]),
}


def _median_ms(fn, steps: int) -> float:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def alternate(runners: dict, timed: tuple, plan: tuple[int, int, int]) -> dict:
    """Per-round medians of ``runners[variant][t]()`` for each timed ``t``: after ``warmup``
    calls of each, ``rounds`` rounds in which every variant in turn (the order rotating by one
    each round) runs each timed function ``steps`` times."""
    rounds, steps, warmup = plan
    for functions in runners.values():
        for fn in functions.values():
            for _ in range(warmup):
                fn()
    labels = list(runners)
    per_round = {t: {label: [] for label in labels} for t in timed}
    for r in range(rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        gc.collect()
        gc.disable()
        try:
            for label in order:
                for t in timed:
                    per_round[t][label].append(_median_ms(runners[label][t], steps))
        finally:
            gc.enable()
    return per_round


def _medians(per_round: dict) -> dict:
    return {t: {v: statistics.median(ms) for v, ms in by.items()} for t, by in per_round.items()}


def paired_ratios(per_round: dict, own: tuple, theirs: tuple) -> dict:
    """``{timed: {"their / our": median over rounds of their time / our time in that round}}``
    for every pair of a framework variant (``theirs``) and an optimlab variant (``own``): a
    ratio of two times measured a few steps apart, so that a change of the machine's load
    between rounds cancels out."""
    ratios = {}
    for t, by in per_round.items():
        ratios[t] = {
            f"{b} / {a}": statistics.median(y / x for x, y in zip(by[a], by[b], strict=True))
            for a in own
            for b in theirs
            if a in by and b in by
        }
    return ratios


# -- torch ----------------------------------------------------------------------------------


def torch_case(model_name: str, optimizer: str, plan: tuple[int, int, int]) -> dict:
    """Every torch variant of ``optimizer`` on its copy of ``model_name``, timed alternately."""
    import torch
    from torch_training import Runner, build_model

    import optimlab.torch as olt

    base, batch = build_model(model_name)
    weights = {k: v.clone() for k, v in base.state_dict().items()}
    arguments = TORCH_OPTIMIZERS[optimizer]
    runners, models = {}, {}
    for label in TORCH_VARIANTS:
        if label == "torch fused" and optimizer not in TORCH_FUSED:
            continue
        model = copy.deepcopy(base)
        model.load_state_dict(weights)
        if label.startswith("optimlab"):
            preset = label.removeprefix("optimlab ")
            opt = getattr(olt, optimizer)(model.parameters(), **arguments, preset=preset)
        else:
            cls = getattr(torch.optim, optimizer)
            opt = cls(model.parameters(), **arguments, **TORCH_ONLY[label])
        runner = Runner(model, opt, batch)
        runners[label] = {
            "training step": runner.train_step,
            "optimizer.step": runner.optimizer_step,
        }
        models[label] = model
    load = os.getloadavg()[0]
    per_round = alternate(runners, TORCH_TIMED, plan)
    with torch.no_grad():  # the same steps from the same weights: float32 rounding apart
        difference = max(
            float((a - b).abs().max())
            for a, b in zip(
                models["optimlab torch"].parameters(),
                models["torch default"].parameters(),
                strict=True,
            )
        )
    return {
        "model": model_name,
        "parameters": sum(p.numel() for p in base.parameters()),
        "optimizer": optimizer,
        "arguments": arguments,
        "rounds": plan[0],
        "steps_per_round": plan[1],
        "warmup_steps": plan[2],
        "load_average": [load, os.getloadavg()[0]],
        "ms": _medians(per_round),
        "ratios": paired_ratios(per_round, TORCH_VARIANTS[: len(PRESETS)], TORCH_OWN),
        "per_round_ms": per_round,
        "largest weight difference, optimlab torch - torch default": difference,
    }


# -- optax ----------------------------------------------------------------------------------


def jax_mlp(widths: tuple, seed: int = 0) -> list[dict]:
    """The MLP's parameters, ``[{"w": (fan_in, fan_out), "b": (fan_out,)}, ...]`` float32, in
    torch's ``nn.Linear`` default distribution U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        layers.append(
            {
                "w": jnp.asarray(rng.uniform(-bound, bound, (fan_in, fan_out)).astype("float32")),
                "b": jnp.asarray(rng.uniform(-bound, bound, fan_out).astype("float32")),
            }
        )
    return layers


def _jax_loss(params, x, y):
    import jax
    import optax

    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    logits = h @ params[-1]["w"] + params[-1]["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _optax_transformation(variant: str, name: str):
    import optax
    import optax.contrib

    import optimlab.optax as olx

    learning_rate, arguments = OPTAX_OPTIMIZERS[name]
    if variant == "optimlab":
        return getattr(olx, name)(learning_rate, **arguments)
    own = optax.contrib if name == "schedule_free_adamw" else optax
    return getattr(own, name)(learning_rate, **arguments)


class JaxRunner:
    """One variant's jitted training step and update, its parameters and state carried along
    (donated to each call), over the same batches in the same order as every variant."""

    def __init__(self, tx, params, batches, grads) -> None:
        import jax
        import optax

        def train_step(params, state, x, y):
            loss, g = jax.value_and_grad(_jax_loss)(params, x, y)
            updates, state = tx.update(g, state, params)
            return optax.apply_updates(params, updates), state, loss

        def update(params, state, g):
            updates, state = tx.update(g, state, params)
            return optax.apply_updates(params, updates), state

        self._train = jax.jit(train_step, donate_argnums=(0, 1))
        self._update = jax.jit(update, donate_argnums=(0, 1))
        self.params = jax.tree.map(lambda a: a.copy(), params)
        self.state = tx.init(self.params)
        self.batches, self.grads, self.i = batches, grads, 0

    def train_step(self) -> None:
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.params, self.state, loss = self._train(self.params, self.state, x, y)
        loss.block_until_ready()
        self.params[-1]["b"].block_until_ready()

    def update(self) -> None:
        self.params, self.state = self._update(self.params, self.state, self.grads)
        self.params[-1]["b"].block_until_ready()


def jax_batches(inputs: int, classes: int, count: int = 4, seed: int = 0) -> list:
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)
    return [
        (
            jnp.asarray(rng.normal(size=(BATCH, inputs)).astype("float32")),
            jnp.asarray(rng.integers(0, classes, BATCH).astype("int32")),
        )
        for _ in range(count)
    ]


def _largest_difference(a_params, b_params, ulps: bool = False) -> float:
    """The largest |a - b| over the leaves of two pytrees of arrays; with ``ulps``, each leaf's
    in ulps of its largest weight (``numpy.spacing(max |b|)``: a weight that a step brought
    near 0 keeps the rounding error of its larger operands)."""
    import jax
    import numpy as np

    largest = 0.0
    for a, b in zip(jax.tree.leaves(a_params), jax.tree.leaves(b_params), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        if ulps:
            d = d / float(np.spacing(np.max(np.abs(b))))
        largest = max(largest, float(np.max(d)))
    return largest


def _agreement_run(widths: tuple, name: str, steps: int, dtype: str) -> list:
    """The parameters of both variants (the same weights in ``dtype``, the same batches, one
    jitted training step each) after each of ``steps`` steps: ``[{variant: params}, ...]``."""
    import jax
    import optax

    params = jax.tree.map(lambda a: a.astype(dtype), jax_mlp(widths))
    batches = [(x.astype(dtype), y) for x, y in jax_batches(widths[0], widths[-1])]
    current, after = {}, []
    steps_of = {}
    for v in OPTAX_VARIANTS:
        tx = _optax_transformation(v, name)

        def step(params, state, x, y, tx=tx):
            g = jax.grad(_jax_loss)(params, x, y)
            updates, state = tx.update(g, state, params)
            return optax.apply_updates(params, updates), state

        steps_of[v] = jax.jit(step)
        current[v] = (params, tx.init(params))
    for i in range(steps):
        x, y = batches[i % len(batches)]
        current = {v: steps_of[v](*current[v], x, y) for v in OPTAX_VARIANTS}
        after.append({v: current[v][0] for v in OPTAX_VARIANTS})
    return after


def agreement(widths: tuple, name: str, steps: int = AGREEMENT_STEPS) -> dict:
    """How far optimlab.optax's ``name`` and optax's are apart after each of ``steps``
    training steps from the same weights on the same batches: ``{"float32 ulps": [...],
    "float32": [...], "float64": [...]}`` (the largest difference of a weight, in ulps of its
    tensor's largest weight and absolute; float64 under ``jax.enable_x64``). See the module's
    docstring for why the float32 gap grows by steps."""
    import jax

    f32 = _agreement_run(widths, name, steps, "float32")
    with jax.enable_x64(True):
        f64 = _agreement_run(widths, name, steps, "float64")
    return {
        "steps": steps,
        "float32 ulps": [_largest_difference(r["optimlab"], r["optax"], ulps=True) for r in f32],
        "float32": [_largest_difference(r["optimlab"], r["optax"]) for r in f32],
        "float64": [_largest_difference(r["optimlab"], r["optax"]) for r in f64],
    }


def optax_case(widths: tuple, name: str, plan: tuple[int, int, int]) -> dict:
    """optimlab.optax's ``name`` against optax's on the MLP of ``widths``, timed alternately."""
    import jax
    import numpy as np

    params = jax_mlp(widths)
    batches = jax_batches(widths[0], widths[-1])
    grads = jax.jit(jax.grad(_jax_loss))(params, *batches[0])
    runners = {
        v: JaxRunner(_optax_transformation(v, name), params, batches, grads) for v in OPTAX_VARIANTS
    }
    load = os.getloadavg()[0]
    per_round = alternate(
        {v: {"training step": r.train_step, "update": r.update} for v, r in runners.items()},
        OPTAX_TIMED,
        plan,
    )
    difference = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(
            jax.tree.leaves(runners["optimlab"].params),
            jax.tree.leaves(runners["optax"].params),
            strict=True,
        )
    )
    learning_rate, arguments = OPTAX_OPTIMIZERS[name]
    return {
        "model": "MLP " + "-".join(map(str, widths)),
        "parameters": sum(int(a.size) for a in jax.tree.leaves(params)),
        "optimizer": name,
        "arguments": {"learning_rate": learning_rate, **arguments},
        "rounds": plan[0],
        "steps_per_round": plan[1],
        "warmup_steps": plan[2],
        "load_average": [load, os.getloadavg()[0]],
        "ms": _medians(per_round),
        "ratios": paired_ratios(per_round, ("optimlab",), ("optax",)),
        "per_round_ms": per_round,
        "largest weight difference": difference,
        "agreement": agreement(widths, name, 2 if plan == QUICK_PLAN else AGREEMENT_STEPS),
    }


# -- the record and its tables --------------------------------------------------------------


def environment(parts) -> dict:
    """Versions and thread counts of what ran, and the machine."""
    env = {"machine": machine()}
    if "torch" in parts:
        import numba
        import torch

        env.update(
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            numba=numba.__version__,
            numba_threads=numba.get_num_threads(),
        )
    if "optax" in parts:
        import jax
        import optax

        env.update(jax=jax.__version__, optax=optax.__version__, jax_devices=len(jax.devices()))
    return env


def _fmt(ms: float) -> str:
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _load(rows: list) -> str:
    loads = [x for row in rows for x in row["load_average"]]
    return f"load average {min(loads):.1f} to {max(loads):.1f}"


def _method(rows: list) -> str:
    plans = sorted({(r["rounds"], r["steps_per_round"]) for r in rows}, reverse=True)
    rounds = ", ".join(f"{r} rounds of {s} steps" for r, s in plans)
    return (
        f"{rounds}, variants alternated; times: medians of per-round medians, ratios: "
        "medians of per-round ratios"
    )


def torch_table(run: dict) -> str:
    """Markdown, one table per model: each preset's time and each torch.optim variant's time
    as a ratio to it (above 1: optimlab is faster), for the training step and for
    optimizer.step alone."""
    env = run["environment"]
    head = " | ".join(f"{v} / optimlab" for v in TORCH_OWN)
    blocks = []
    for model in dict.fromkeys(r["model"] for r in run["torch"]):
        rows = [r for r in run["torch"] if r["model"] == model]
        lines = [
            f"optimlab.torch (each preset) against torch.optim: {model} "
            f"({rows[0]['parameters']:,} parameters), float32, batch {BATCH}; torch "
            f"{env['torch']} threads {env['torch_threads']}, numba {env['numba']} threads "
            f"{env['numba_threads']}; {_method(rows)}; {env['machine']}, {_load(rows)}",
            "",
            f"| optimizer | preset | training step ms | {head} | optimizer.step ms | {head} |",
            "|---|---|" + "---:|" * (2 + 2 * len(TORCH_OWN)),
        ]
        for row in rows:
            for preset in PRESETS:
                cells = []
                for timed in TORCH_TIMED:
                    ratios = row["ratios"][timed]
                    cells.append(_fmt(row["ms"][timed][f"optimlab {preset}"]))
                    for v in TORCH_OWN:
                        key = f"{v} / optimlab {preset}"
                        cells.append(f"{ratios[key]:.2f}" if key in ratios else "-")
                lines.append(f"| {row['optimizer']} | {preset} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def optax_table(run: dict) -> str:
    """Markdown: optimlab.optax's time, optax's and ``optax / optimlab`` (above 1: optimlab is
    faster), for the jitted training step and the update alone, and how far the two variants'
    parameters ended apart."""
    env, rows = run["environment"], run["optax"]
    models = ", ".join(
        dict.fromkeys(f"{r['model']} ({r['parameters']:,} parameters)" for r in rows)
    )
    # (a run from before agreement() was measured: the difference after the timed steps)
    agreed = all("agreement" in r for r in rows)
    if agreed:
        n = rows[0]["agreement"]["steps"]
        last = f"float32 ulps after 1, {n} steps | float64 difference after {n} |"
    else:
        last = "largest weight difference |"
    lines = [
        f'optimlab.optax (preset "optax") against optax, in one jax.jit step: {models}, '
        f"float32, batch {BATCH}; jax {env['jax']}, optax {env['optax']}; "
        f"{_method(rows)}; {env['machine']}, {_load(rows)}",
        "",
        "| optimizer | training step: optimlab.optax ms | optax ms | optax / optimlab "
        f"| update: optimlab.optax ms | optax ms | optax / optimlab | {last}",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if agreed else ""),
    ]
    for row in rows:
        cells = []
        for timed in OPTAX_TIMED:
            ms = row["ms"][timed]
            cells += [
                _fmt(ms["optimlab"]),
                _fmt(ms["optax"]),
                f"{row['ratios'][timed]['optax / optimlab']:.2f}",
            ]
        if agreed:
            a = row["agreement"]
            ulps = a["float32 ulps"]
            cells += [f"{ulps[0]:.0f}, {ulps[-1]:.0f}", f"{a['float64'][-1]:.1e}"]
        else:
            cells.append(f"{row['largest weight difference']:.1e}")
        lines.append(f"| {row['optimizer']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(run: dict) -> str:
    """The tables of the parts ``run`` holds, a blank line apart (the README's block)."""
    return "\n\n".join(
        table(run)
        for part, table in (("torch", torch_table), ("optax", optax_table))
        if run.get(part)
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: small, few steps")
    parser.add_argument(
        "--parts", nargs="*", choices=("torch", "optax"), default=["torch", "optax"]
    )
    parser.add_argument("--models", nargs="*", choices=TORCH_MODELS, help="the torch models")
    parser.add_argument(
        "--optimizers",
        nargs="*",
        choices=list(TORCH_OPTIMIZERS) + list(OPTAX_OPTIMIZERS),
        help="a subset (torch's names for the torch part, optax's for the optax part)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch's and numba's thread count (default: theirs; XLA keeps its own pool)",
    )
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--table-from", help="print the tables of a saved --json run")
    args = parser.parse_args(argv)

    if args.table_from:
        with open(args.table_from) as f:
            print(tables(json.load(f)))
        return 0

    start = time.perf_counter()
    if args.threads is not None and "torch" in args.parts:
        import numba
        import torch

        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            parser.error(
                f"--threads must be in [1, {numba.config.NUMBA_NUM_THREADS}], got {args.threads}"
            )
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    load = os.getloadavg()
    run = {"environment": environment(args.parts), "quick": args.quick}
    print(f"# {run['environment']['machine']}; load average {load[0]:.2f}", flush=True)
    if "torch" in args.parts:
        models = [QUICK["torch"][0]] if args.quick else (args.models or ["wide MLP"])
        names = QUICK["torch"][1] if args.quick else list(TORCH_OPTIMIZERS)
        names = [n for n in names if not args.optimizers or n in args.optimizers]
        run["torch"] = []
        for model in models:
            for name in names:
                row = torch_case(model, name, QUICK_PLAN if args.quick else FULL_PLAN[model])
                run["torch"].append(row)
                for timed in TORCH_TIMED:
                    ms = row["ms"][timed]
                    print(
                        f"  {model:10s} {name:8s} {timed:14s} "
                        + "  ".join(f"{v.removeprefix('optimlab ')} {ms[v]:8.3f}" for v in ms)
                        + " ms",
                        flush=True,
                    )
    if "optax" in args.parts:
        widths = QUICK["optax"][0] if args.quick else JAX_WIDTHS
        names = QUICK["optax"][1] if args.quick else list(OPTAX_OPTIMIZERS)
        names = [n for n in names if not args.optimizers or n in args.optimizers]
        run["optax"] = []
        for name in names:
            row = optax_case(widths, name, QUICK_PLAN if args.quick else FULL_PLAN["jax MLP"])
            run["optax"].append(row)
            for timed in OPTAX_TIMED:
                ms = row["ms"][timed]
                print(
                    f"  {name:20s} {timed:14s} optimlab {ms['optimlab']:8.3f} ms  optax "
                    f"{ms['optax']:8.3f} ms",
                    flush=True,
                )
            a = row["agreement"]
            print(
                f"  {name:20s} apart after 1..{a['steps']} steps: float32 ulps "
                + " ".join(f"{x:.0f}" for x in a["float32 ulps"])
                + ", float64 "
                + " ".join(f"{x:.1e}" for x in a["float64"])
                + f"; after the timed steps {row['largest weight difference']:.1e}",
                flush=True,
            )
    run["environment"].update(
        load_average_before=list(load), load_average_after=list(os.getloadavg())
    )
    print(tables(run))
    print(f"# wall time: {time.perf_counter() - start:.1f} s")
    if args.json:
        save_json(args.json, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
