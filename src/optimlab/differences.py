"""Where PyTorch, Keras and optax differ: each difference as a small measured experiment.

Every number printed here is computed by optimlab's presets, which reproduce each peer to
float tolerance (``tests/conformance`` runs the peers themselves beside them; the quirks that a
preset deliberately does *not* copy are measured against the peer in
``tests/conformance/test_quirks.py``). Run ``optimlab differences`` to print them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import keras_differences, schedules
from . import optimizers as opts
from .rules import nadam as nadam_rule


@dataclass
class Difference:
    """One way the peers differ: a title, what differs, and an experiment that shows it."""

    title: str
    explanation: str
    experiment: Callable[[], tuple[list[str], list[list[str]]]]


def _trajectory(opt, grads, lr_changes=None, p0=0.0):
    p = np.array([p0], dtype=np.float64)
    out = []
    for step, g in enumerate(grads):
        if lr_changes and step in lr_changes:
            opt.learning_rate = lr_changes[step]
        opt.apply_gradients([(np.array([g], dtype=np.float64), p)])
        out.append(float(p[0]))
    return out


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def momentum_convention():
    rows = []
    for label, style in (
        ("torch, optax.sgd (lr outside)", "lr_outside"),
        ("Keras (lr inside)", "lr_inside"),
    ):
        traj = _trajectory(
            opts.SGD(0.1, momentum=0.9, momentum_style=style), [1.0] * 10, lr_changes={5: 0.01}
        )
        rows.append([label] + [_fmt(traj[i]) for i in (4, 5, 9)])
    return [
        "momentum 0.9, g = 1, lr 0.1 -> 0.01 at step 5",
        "p after step 4",
        "step 5",
        "step 9",
    ], rows


def adam_epsilon():
    rows = []
    for preset in ("keras", "torch", "optax"):
        opt = opts.Adam(learning_rate=1e-3, epsilon=1e-3, preset=preset)
        traj = _trajectory(opt, [1e-4])
        rows.append([preset, _fmt(traj[0])])
    ratio = float(rows[1][1]) / float(rows[0][1])
    rows.append(["torch / keras", f"{ratio:.1f}x"])
    return ["Adam, lr 1e-3, epsilon 1e-3, g = 1e-4", "first update"], rows


def adagrad_defaults():
    rows = []
    for preset in ("keras", "torch", "optax"):
        opt = opts.Adagrad(learning_rate=0.1, preset=preset)
        traj = _trajectory(opt, [1.0, 1.0, 1.0])
        rows.append(
            [
                preset,
                f"{opt.initial_accumulator_value:g}",
                f"{opt.epsilon:g}",
                "inside" if opt.epsilon_in_sqrt else "outside",
            ]
            + [_fmt(x) for x in traj]
        )
    return [
        "Adagrad, lr 0.1, g = 1",
        "G0",
        "epsilon",
        "epsilon vs sqrt",
        "step 0",
        "step 1",
        "step 2",
    ], rows


def rmsprop_defaults():
    rows = []
    grads = [1.0] * 10
    for preset in ("keras", "torch", "optax"):
        opt = opts.RMSprop(learning_rate=0.01, momentum=0.9, preset=preset)
        traj = _trajectory(opt, grads, lr_changes={5: 0.001})
        rows.append(
            [
                preset,
                f"{opt.rho:g}",
                f"{opt.epsilon:g}",
                opt.momentum_style,
                _fmt(traj[4]),
                _fmt(traj[9]),
            ]
        )
    return [
        "RMSprop, momentum 0.9, g = 1, lr 0.01 -> 0.001 at step 5",
        "rho",
        "epsilon",
        "momentum",
        "step 4",
        "step 9",
    ], rows


def amsgrad_order():
    grads = [1.0, 0.1, 0.1, 0.1, 0.1]
    rows = []
    for label, preset, _order in (
        ("torch, Keras: max of raw v", "torch", "raw"),
        ("optax: max of bias-corrected v", "optax", "corrected"),
    ):
        opt = opts.Adam(learning_rate=0.1, amsgrad=True, preset=preset)
        traj = _trajectory(opt, grads)
        rows.append([label] + [_fmt(x) for x in traj])
    return ["AMSGrad, lr 0.1, g = 1 then 0.1"] + [f"step {i}" for i in range(5)], rows


def weight_decay_styles():
    rows = []
    grads = [0.0] * 3
    for label, kwargs in (
        ("Keras Adam(weight_decay=0.1): decoupled, p -= lr*wd*p", dict(preset="keras")),
        ("torch Adam(weight_decay=0.1): L2, g += wd*p", dict(preset="torch")),
        (
            "torch AdamW(weight_decay=0.1): decoupled",
            dict(preset="torch", weight_decay_mode="decoupled"),
        ),
    ):
        opt = opts.Adam(learning_rate=0.01, weight_decay=0.1, **kwargs)
        traj = _trajectory(opt, grads, p0=1.0)
        rows.append([label] + [_fmt(x) for x in traj])
    defaults = ", ".join(
        f"{p}: {opts.AdamW(learning_rate=1e-3, preset=p).weight_decay:g}"
        for p in ("keras", "torch", "optax")
    )
    rows.append([f"AdamW default weight_decay ({defaults})", "", "", ""])
    return ["Adam, lr 0.01, p0 = 1, g = 0", "step 0", "step 1", "step 2"], rows


def nadam_schedule():
    rows = []
    for preset in ("keras", "torch", "optax"):
        opt = opts.Nadam(learning_rate=1e-3, preset=preset)
        mus = [nadam_rule.momentum_at(t, 0.9, opt.momentum_decay) for t in (1, 10, 200)]
        traj = _trajectory(opt, [1.0])
        rows.append(
            [preset, repr(opt.momentum_decay)] + [f"{m:.4f}" for m in mus] + [_fmt(traj[0])]
        )
    return [
        "Nadam, beta_1 0.9",
        "momentum_decay",
        "mu_1",
        "mu_10",
        "mu_200",
        "first update (lr 1e-3, g = 1)",
    ], rows


def adamax_epsilon():
    rows = []
    for preset in ("keras", "torch"):
        opt = opts.Adamax(learning_rate=1e-3, epsilon=1e-3, preset=preset)
        traj = _trajectory(opt, [1e-3, 0.0, 0.0, 0.0])
        rows.append(
            [preset, "outside the max" if not opt.epsilon_in_max else "inside the max"]
            + [_fmt(x) for x in traj]
        )
    return [
        "Adamax, lr 1e-3, epsilon 1e-3, g = 1e-3 then 0",
        "epsilon",
        "step 0",
        "step 1",
        "step 2",
        "step 3",
    ], rows


def radam_epsilon():
    rows = []
    for preset in ("torch", "optax", "keras"):
        opt = opts.RAdam(learning_rate=1e-3, epsilon=1e-3, preset=preset)
        traj = _trajectory(opt, [1e-3] * 7)
        steps = [-traj[0]] + [a - b for a, b in zip(traj, traj[1:], strict=False)]
        rows.append(
            [
                preset,
                "sqrt(v)" if opt.epsilon_style == "hat" else "sqrt(v / bc2)",
                f"rho_t {'>=' if opt.threshold_inclusive else '>'} {opt.threshold:g}",
            ]
            + [_fmt(steps[i]) for i in (4, 5, 6)]
        )
    return [
        "RAdam, lr 1e-3, epsilon 1e-3, g = 1e-3",
        "epsilon added to",
        "rectified when",
        "step 5 (momentum SGD)",
        "step 6 (first rectified)",
        "step 7",
    ], rows


def muon_conventions():
    """Muon's steps on a tall 4 x 2 matrix (gradient g, then g2 = g with its columns swapped;
    lr 0.02, no weight decay): the size of step 1, and how far step 2 has turned towards the
    new gradient (the cosine with -NewtonSchulz(g2): 1 would follow g2 alone), as each
    momentum convention weighs g2 against the history; and what a bias vector gets."""
    from .rules.newton_schulz import COEFFICIENTS, orthogonalize

    g = np.array([[1.0, 0.5], [-0.5, 1.0], [0.25, 0.0], [0.0, -0.25]])
    g2 = g[:, ::-1].copy()
    target = orthogonalize(g2, *COEFFICIENTS, 5, 1e-7)
    rows = []
    for preset in ("keras", "torch", "optax"):
        opt = opts.Muon(learning_rate=0.02, weight_decay=0.0, preset=preset)
        w = np.zeros((4, 2))
        steps = []
        for grad in (g, g2):
            before = w.copy()
            opt.apply_gradients([(grad, w)])
            steps.append(w - before)
        turn = -np.sum(steps[1] * target) / (np.linalg.norm(steps[1]) * np.linalg.norm(target))
        scale = {
            "rms": "0.2 sqrt(max(4, 2)) = 0.4",
            "rows_over_cols": "sqrt(max(1, 4 / 2)) = 1.41",
            "cols_over_rows": "sqrt(max(1, 2 / 4)) = 1",
        }[opt.shape_scaling]
        momentum = {
            "sum": "m = 0.95 m + g",
            "ema": "m = 0.95 m + 0.05 g",
            "ema_corrected": "EMA, Nesterov term bias-corrected",
        }[opt.momentum_style]
        bias = {"adamw": "AdamW", "nadamw": "NAdamW", "raise": "refused"}[opt.non_matrix]
        wd = opts.Muon(learning_rate=0.02, preset=preset).weight_decay
        rows.append(
            [
                preset,
                momentum,
                scale,
                _fmt(float(np.linalg.norm(steps[0]))),
                f"{turn:.4f}",
                bias,
                f"{wd or 0:g}",
            ]
        )
    return [
        "Muon on a 4 x 2 matrix, lr 0.02: g, then g2",
        "momentum",
        "shape factor s",
        "|step 1|_F",
        "step 2 towards -NS(g2) (cosine)",
        "a bias (1-D) takes",
        "default weight decay",
    ], rows


def adadelta_defaults():
    rows = []
    for preset in ("keras", "torch"):
        opt = opts.Adadelta(preset=preset)
        traj = _trajectory(opt, [1.0] * 3)
        rows.append(
            [preset, f"{opt.learning_rate:g}", f"{opt.rho:g}", f"{opt.epsilon:g}", _fmt(traj[-1])]
        )
    rows.append(["optax", "None (ascends!)", "0.9", "1e-06", "optimlab requires learning_rate"])
    return ["Adadelta defaults, g = 1", "lr", "rho", "epsilon", "p after 3 steps"], rows


def rprop_conventions():
    """Rprop's positions (and step sizes) under each preset: torch clips the learning rate at
    once, optax only once the step size changes, and applies each update one step late."""
    grads = [1.0, 1.0, -1.0, 1.0, 1.0]
    rows = []
    for label, preset in (
        ("torch (and keras)", "torch"),
        ("optax 0.2.8: one step late", "optax"),
    ):
        opt = opts.Rprop(learning_rate=0.5, max_step_size=0.2, preset=preset)
        p = np.zeros(1)
        cells = []
        for g in grads:
            opt.apply_gradients([(np.array([g]), p)])
            step = opt.state_dict()["slots"]["step_size/0"][0]
            cells.append(f"{_fmt(float(p[0]))} ({_fmt(float(step))})")
        rows.append([label, *cells])
    header = ["Rprop lr 0.5, max_step_size 0.2, g = 1, 1, -1, 1, 1: p (step size)"]
    return header + [f"step {k + 1}" for k in range(len(grads))], rows


ASGD_PLAN = (0.1, 0.1, 0.01, 0.01, 0.01)  # the learning rate of updates 1..5


def asgd_step_size():
    """ASGD's step size eta of updates 1..5 with a learning-rate change at update 3: computed
    after each update from that update's lr (one update late, torch's and optimlab's), against
    the same expression from the current lr; and torch's eta as it stores it for float64
    parameters under its float32 default dtype (rounded to float32)."""
    from .rules import asgd as asgd_rule

    lambd, alpha = 0.5, 0.75
    opt = opts.ASGD(learning_rate=ASGD_PLAN[0], lambd=lambd, alpha=alpha, preset="torch")
    p = np.zeros(1)
    late, current, rounded = [], [], []
    for t, lr in enumerate(ASGD_PLAN, start=1):
        before = opt.state_dict()["step_state"]
        late.append(lr if t == 1 else before[0][0])
        current.append(lr / (1.0 + lambd * lr * (t - 1)) ** alpha)
        previous = ASGD_PLAN[max(t - 2, 0)]
        rounded.append(
            float(np.float32(lr))
            if t == 1
            else asgd_rule.next_eta_mu(
                t - 1, previous, lambd=lambd, alpha=alpha, t0=1e6, state_dtype=np.float32
            )[0]
        )
        opt.learning_rate = lr
        opt.apply_gradients([(np.ones(1), p)])
    rows = [
        ["learning rate", *(_fmt(x) for x in ASGD_PLAN)],
        ["eta (torch, optimlab: one update late)", *(f"{x:.10g}" for x in late)],
        ["eta from the current lr (neither)", *(f"{x:.10g}" for x in current)],
        ["eta in torch's float32 state (float64 params)", *(f"{x:.10g}" for x in rounded)],
    ]
    header = ["ASGD lambd 0.5, alpha 0.75"] + [f"update {k + 1}" for k in range(len(ASGD_PLAN))]
    return header, rows


def clipping_formulas():
    rows = []
    for preset in ("keras", "torch", "optax"):
        for g in (3.0, 1.0):
            opt = opts.SGD(learning_rate=1.0, global_clipnorm=1.0, preset=preset)
            p = np.zeros(1)
            opt.apply_gradients([(np.array([g]), p)])
            rows.append([preset, f"{g:g}", repr(float(-p[0]))])
    return ["global_clipnorm 1.0, SGD lr 1", "|g|", "clipped gradient"], rows


def accumulation_schedule():
    sched = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    rows = []
    for label, schedule in (
        ("optimlab, optax.MultiSteps (schedule at real updates)", sched),
        ("Keras (schedule at its micro-step counter: lr(2u+1))", lambda u: sched(2 * u + 1)),
    ):
        opt = opts.SGD(learning_rate=schedule, gradient_accumulation_steps=2)
        traj = _trajectory(opt, [1.0] * 6)
        sizes = [-traj[1], traj[1] - traj[3], traj[3] - traj[5]]
        rows.append([label] + [_fmt(abs(x)) for x in sizes])
    return [
        "SGD, ExponentialDecay(1, 1, 0.5), accumulation 2, g = 1",
        "update 1",
        "update 2",
        "update 3",
    ], rows


def per_parameter_steps():
    rows = []
    for preset in ("keras", "torch"):
        opt = opts.Adam(learning_rate=0.1, epsilon=0.0, beta_1=0.9, beta_2=0.999, preset=preset)
        a, b = np.zeros(1), np.zeros(1)
        with warnings.catch_warnings():  # Keras (and the keras preset) warn of b's None
            warnings.filterwarnings("ignore", "Gradients do not exist", UserWarning)
            for _ in range(5):  # b is frozen (no gradient) for 5 updates
                opt.apply_gradients([(np.ones(1), a), (None, b)])
        opt.apply_gradients([(np.ones(1), a), (np.ones(1), b)])
        rows.append([preset, _fmt(float(b[0]))])
    return ["Adam: a parameter frozen for 5 updates, then g = 1", "its first update"], rows


def keras_ema_micro_steps(updates: int = 3):
    """optimlab's EMA (once per real update) against Keras's (once per call, micro-steps too)."""
    k, mu = 2, 0.5
    opt = opts.SGD(learning_rate=0.1, gradient_accumulation_steps=k, use_ema=True, ema_momentum=mu)
    p = np.zeros(1)
    keras_avg = np.zeros(1)
    for call in range(k * updates):
        opt.apply_gradients([(np.ones(1), p)])
        real_updates_before = call // k  # Keras's `iterations` during this call
        m = 0.0 if real_updates_before == 0 else mu
        keras_avg = m * keras_avg + (1.0 - m) * p
    return [
        f"SGD lr 0.1, g = 1, accumulation {k}, ema_momentum {mu}",
        f"p after {updates} updates",
        "EMA",
    ], [
        [
            "optimlab, torch AveragedModel (one EMA step per update)",
            _fmt(p[0]),
            _fmt(opt.ema[0][0]),
        ],
        ["Keras (one EMA step per micro-step)", _fmt(p[0]), _fmt(keras_avg[0])],
    ]


def float32_powers():
    """Adam's step factor sqrt(bc2)/bc1 with Keras's float32-rounded betas and with the exact."""
    beta_1, beta_2 = 0.9, 0.999
    rows = []
    for label, b1, b2 in (
        ("keras, float32 variables", float(np.float32(beta_1)), float(np.float32(beta_2))),
        ("torch, optax (and float64)", beta_1, beta_2),
    ):
        factors = [np.sqrt(1 - b2**t) / (1 - b1**t) for t in (1, 10, 100)]
        rows.append([label, repr(b2)] + [f"{f:.7f}" for f in factors])
    exact = [float(x) for x in rows[1][2:]]
    rows.append(
        ["relative difference", ""]
        + [f"{abs(float(a) / b - 1):.1e}" for a, b in zip(rows[0][2:], exact, strict=True)]
    )
    return [
        "Adam 0.9 / 0.999",
        "base of beta_2^t",
        "sqrt(bc2)/bc1 step 1",
        "step 10",
        "step 100",
    ], rows


def lamb_weight_decay():
    """Lamb's decay before the step (Keras) or inside the trust ratio (optax): with g = 0
    the direction is the decay alone, which optax's ratio rescales to lr * ||p||."""
    rows = []
    for label, preset in (
        ("Keras: p -= lr*wd*p, then the trust ratio", "keras"),
        ("optax (torch preset): r + wd*p, then the ratio", "optax"),
    ):
        cells = [label]
        for wd in (0.01, 0.1):
            opt = opts.Lamb(learning_rate=0.1, weight_decay=wd, preset=preset)
            cells.append(_fmt(_trajectory(opt, [0.0] * 3, p0=1.0)[-1]))
        opt = opts.Lamb(learning_rate=0.1, weight_decay=0.1, preset=preset)
        p = np.array([1.0, 2.0])
        opt.apply_gradients([(np.array([1.0, -1.0]), p)])
        moved = float(np.linalg.norm(p - [1.0, 2.0]) / (0.1 * np.linalg.norm([1.0, 2.0])))
        cells += [_fmt(moved), f"{opt.epsilon:g}"]
        rows.append(cells)
    return [
        "Lamb, lr 0.1, p0 = 1",
        "p after 3 steps of g = 0, wd 0.01",
        "wd 0.1",
        "|step| / (lr |p|), g = (1, -1), p0 = (1, 2), wd 0.1",
        "default epsilon",
    ], rows


def _schedule_free_run(preset, grads, lrs=None, **kwargs):
    """(y, x) after each step of ScheduleFreeAdamW(preset) on one number from p0 = 1."""
    opt = opts.ScheduleFreeAdamW(preset=preset, **kwargs)
    p = np.array([1.0])
    out = []
    for step, g in enumerate(grads):
        if lrs is not None:
            opt.learning_rate = lrs[step]
        opt.apply_gradients([(np.array([g]), p)])
        x = opt.eval_params()[0][0] if opt.beta_1 > 0 else np.nan  # (beta_1 = 0: no x)
        out.append((float(p[0]), float(x)))
    return out


#: the two Schedule-Free experiments' inputs: g = 1, lr 0.01 for 5 steps, then 0.1
SCHEDULE_FREE_LRS = [0.01] * 5 + [0.1] * 5


def schedule_free_averaging():
    """x is the mean of the z iterates with c_t = 1/t (Keras) or weighted by lr_max^2
    (optax): after a rise of the learning rate optax's x follows the new z at once."""
    rows = []
    for label, preset, extra in (
        ("Keras: c_t = 1/t", "keras", {}),
        ("optax: c_t = lr_max^2 / sum lr_max^2", "optax", {}),
        ("optax with weight_lr_power=0", "optax", {"weight_lr_power": 0.0}),
    ):
        run = _schedule_free_run(preset, [1.0] * 10, SCHEDULE_FREE_LRS, **extra)
        rows.append([label] + [_fmt(run[i][1]) for i in (4, 5, 9)] + [_fmt(run[9][0])])
    return [
        "ScheduleFreeAdamW, g = 1, lr 0.01 (steps 1-5), 0.1 (6-10)",
        "x after step 5",
        "x after step 6",
        "x after step 10",
        "y after step 10",
    ], rows


def schedule_free_warmup():
    """The first steps with warmup_steps=10, lr 0.1, g = 1: Keras's z step takes lr * t/10,
    optax's lr * (t - 1)/10 (its base optimizer counts from 0), so its first step is 0."""
    rows = []
    for label, preset in (("Keras: lr * t / W", "keras"), ("optax: lr * (t - 1) / W", "optax")):
        run = _schedule_free_run(preset, [1.0] * 3, learning_rate=0.1, warmup_steps=10)
        rows.append([label] + [_fmt(y - 1.0) for y, _ in run])
    return ["warmup_steps 10, lr 0.1, g = 1", "y - 1 after step 1", "step 2", "step 3"], rows


def schedule_free_weight_decay():
    """g = 0, wd 0.1, lr 0.1: Keras shrinks y before the step (z stays, x absorbs it), optax
    adds wd * y to the z step."""
    rows = []
    for label, preset in (
        ("Keras: y -= lr*wd*y before the step", "keras"),
        ("optax: z -= lr*(u + wd*y)", "optax"),
    ):
        run = _schedule_free_run(preset, [0.0] * 10, learning_rate=0.1, weight_decay=0.1)
        rows.append([label] + [_fmt(v) for v in (*run[0], *run[9])])
    return [
        "ScheduleFreeAdamW, g = 0, p0 = 1, lr 0.1, wd 0.1",
        "y after step 1",
        "x after step 1",
        "y after step 10",
        "x after step 10",
    ], rows


def schedule_free_beta_1_zero():
    """beta_1 = 0: both peers recover x = (y - (1 - 0) z) / 0 = 0 / 0 and give NaN; optimlab
    takes y = z (AdamW with beta_1 = 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        peers = float(np.float64(0.0) / np.float64(0.0))  # the peers' (y - z) / beta_1 at z = y
    run = _schedule_free_run("keras", [1.0, 1.0], learning_rate=0.1, beta_1=0.0)
    adamw = opts.AdamW(0.1, beta_1=0.0, weight_decay=0.0, epsilon=1e-8, epsilon_style="paper")
    reference = _trajectory(adamw, [1.0, 1.0], p0=1.0)
    return ["beta_1 = 0, lr 0.1, g = 1, p0 = 1", "y after step 1", "step 2"], [
        ["Keras, optax: x = (y - z) / 0", _fmt(peers), _fmt(peers)],
        ["optimlab: y = z", _fmt(run[0][0]), _fmt(run[1][0])],
        ["optimlab AdamW(beta_1=0)", _fmt(reference[0]), _fmt(reference[1])],
    ]


def lamb_nan_norm():
    """One NaN gradient element (nan_policy="propagate"): Keras's trust ratio of a NaN norm
    is 1, optax's NaN."""
    rows = []
    for label, preset in (
        ("Keras: ratio 1", "keras"),
        ("optax (torch preset): ratio NaN", "optax"),
    ):
        opt = opts.Lamb(learning_rate=0.1, epsilon=0.0, nan_policy="propagate", preset=preset)
        p = np.array([1.0, 2.0])
        with np.errstate(invalid="ignore"):
            opt.apply_gradients([(np.array([np.nan, 1.0]), p)])
        rows.append([label, _fmt(p[0]), _fmt(p[1])])
    return ["Lamb, lr 0.1, p0 = (1, 2), g = (NaN, 1)", "p[0]", "p[1]"], rows


def ftrl_weight_decay():
    """Ftrl's weight decay under each preset: Keras's base class decays p before the step;
    the torch and optax presets (neither peer has an FTRL) add wd * p to the gradient."""
    rows = []
    for label, preset in (
        ("keras: p -= lr*wd*p, then FTRL", "keras"),
        ("torch: g + wd*p (no FTRL in torch.optim)", "torch"),
        ("optax: g + wd*p (no FTRL in optax 0.2.8)", "optax"),
    ):
        opt = opts.Ftrl(learning_rate=0.1, weight_decay=0.1, preset=preset)
        rows.append([label] + [_fmt(x) for x in _trajectory(opt, [1.0] * 3, p0=1.0)])
    return ["Ftrl, lr 0.1, wd 0.1, g = 1, p0 = 1", "p after step 1", "step 2", "step 3"], rows


def _rosenbrock(params):
    (x,) = params
    f = float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return f, [g]


#: the start of the L-BFGS comparison: Rosenbrock in 2 dimensions (tests/test_lbfgs.py's
#: "rosenbrock2", whose optax answers are stored)
LBFGS_X0 = tuple(np.random.default_rng(0).uniform(-2, 2, 2).tolist())
LBFGS_CHECKPOINTS = (1, 5, 10, 25)


def lbfgs_runs():
    """L-BFGS iterations on Rosenbrock 2-d under each convention, one iteration a step (torch's
    with max_eval=25, so that each line search has the 24 evaluations it has in a step of
    torch's defaults; the stopping rules off):
    ``{label: (losses after LBFGS_CHECKPOINTS iterations, evaluations for 25, |x_1 - x_0|)}``."""
    from .lbfgs import LBFGS

    configs = (
        ("torch, line_search_fn=None (fixed step lr)", "torch", {"max_eval": 25}),
        ("torch, 'strong_wolfe'", "torch", {"line_search": "strong_wolfe", "max_eval": 25}),
        ("optax.lbfgs (zoom)", "optax", {}),
    )
    out = {}
    for label, preset, kw in configs:
        opt = LBFGS(preset=preset, max_iter=1, tolerance_grad=None, tolerance_change=None, **kw)
        params = [np.array(LBFGS_X0)]
        losses, first = [], None
        for k in range(1, max(LBFGS_CHECKPOINTS) + 1):
            opt.step(_rosenbrock, params)
            if k == 1:
                first = float(np.abs(params[0] - np.array(LBFGS_X0)).max())
            if k in LBFGS_CHECKPOINTS:
                losses.append(_rosenbrock(params)[0])
        out[label] = (losses, opt.state["func_evals"], first)
    return out


def lbfgs_conventions():
    """The loss after 1, 5, 10 and 25 L-BFGS iterations on Rosenbrock 2-d, the evaluations
    they cost, and the first step, under torch's and optax's conventions."""
    header = [
        "L-BFGS on Rosenbrock 2-d, one iteration a step",
        *(f"loss after {k}" for k in LBFGS_CHECKPOINTS),
        "evaluations (25 it.)",
        "first step max|dx|",
    ]
    rows = []
    for label, (losses, evals, first) in lbfgs_runs().items():
        rows.append([label, *(f"{v:.3g}" for v in losses), str(evals), _fmt(first)])
    return header, rows


DIFFERENCES = [
    Difference(
        "Momentum: the learning rate inside or outside the buffer",
        "Keras keeps v = mu*v - lr*g (the lecture's form), PyTorch and optax.sgd keep "
        "b = mu*b + g and step by lr*b. Equal for a constant lr; after a change, Keras's "
        "buffer still carries the old lr for about 1/(1-mu) steps.",
        momentum_convention,
    ),
    Difference(
        "Adam: epsilon-hat (Keras) or epsilon (PyTorch, optax)",
        "Keras adds epsilon to sqrt(v), the others to sqrt(v_hat) = sqrt(v/bc2): the same "
        "number acts about 1/sqrt(bc2) (31.6x at step 1) larger in Keras.",
        adam_epsilon,
    ),
    Difference(
        "Adagrad: initial accumulator and epsilon",
        "Keras and optax start G at 0.1 with epsilon 1e-7 inside the root; PyTorch starts at 0 "
        "with epsilon 1e-10 outside.",
        adagrad_defaults,
    ),
    Difference(
        "RMSprop: rho, epsilon and where momentum meets the learning rate",
        "PyTorch: alpha 0.99, epsilon outside the root, lr outside the momentum buffer; Keras "
        "and optax: rho 0.9, epsilon inside, lr inside the buffer (so optax's RMSprop follows "
        "the Keras convention while optax.sgd follows PyTorch's).",
        rmsprop_defaults,
    ),
    Difference(
        "AMSGrad: the maximum of v or of v_hat",
        "PyTorch and Keras keep the maximum of the raw v and bias-correct it; optax keeps the "
        "maximum of the bias-corrected v_hat, a different sequence.",
        amsgrad_order,
    ),
    Difference(
        "Weight decay: decoupled (Keras, AdamW) or L2 (PyTorch's weight_decay)",
        "Keras applies p -= lr*wd*p on every optimizer; PyTorch adds wd*p to the gradient "
        "(so Adam normalizes it away) except in AdamW. AdamW's default decay differs 100x.",
        weight_decay_styles,
    ),
    Difference(
        "Nadam: the momentum schedule",
        "mu_t = beta_1 * (1 - 0.5 * 0.96^(t*psi)): Keras psi = 1, PyTorch psi = 0.004, optax a "
        "constant beta_1.",
        nadam_schedule,
    ),
    Difference(
        "Adamax: epsilon inside or outside the maximum",
        "PyTorch and optax take max(beta_2*u, |g| + eps); Keras max(beta_2*u, |g|) and adds "
        "eps to the denominator.",
        adamax_epsilon,
    ),
    Difference(
        "RAdam: epsilon-hat (PyTorch) or epsilon (optax), > or >= at the threshold",
        "torch.optim.RAdam adds epsilon to sqrt(v) and scales by sqrt(bc2), as the paper's "
        "authors' code (unlike torch's own Adam); optax adds it to sqrt(v_hat) = sqrt(v/bc2), "
        "so the same number acts 1/sqrt(bc2) (12.9x at step 6) larger in PyTorch. With "
        "beta_2 0.999 both take the rectified step from step 6 on (rho_6 = 5.99); PyTorch "
        "rectifies when rho_t > 5, optax when rho_t >= threshold (5 by default), which parts "
        "them only where rho_t equals the threshold. Keras has no RAdam: optimlab's keras "
        "preset is PyTorch's rule with Keras's epsilon 1e-7.",
        radam_epsilon,
    ),
    Difference(
        "Adadelta: defaults",
        "Keras lr 0.001 (the paper has none, i.e. 1.0), rho 0.95. optax's default lr None "
        "skips the sign flip and ascends; optimlab's optax preset requires a learning rate.",
        adadelta_defaults,
    ),
    Difference(
        "Rprop: when the step sizes are clipped, and optax's late update",
        "torch.optim.Rprop clips the step sizes to [min, max] on every step, so a learning rate "
        "above max_step_size is cut at the first update; optax.rprop clips only where a step "
        "size changes. And optax 0.2.8 applies the update computed at the previous step (its "
        "update is built from the previous state: google-deepmind/optax pull request 1725), so "
        "its first update moves nothing and each later one lags a step behind. optimlab's "
        "presets reproduce both (clamp_every_step, delayed_update); Keras has no Rprop.",
        rprop_conventions,
    ),
    Difference(
        "Ftrl: Keras only, in TensorFlow's form",
        "keras.optimizers.Ftrl is FTRL-Proximal (McMahan et al. 2013) as TensorFlow wrote it: "
        "its l2 enters the quadratic twice (the paper's lambda_2 is 2 * l2), beta as beta / lr, "
        "the accumulator starts at 0.1 (the paper's n at 0), and each step's learning rate "
        "enters sigma (the paper's alpha is fixed). Neither torch.optim nor optax 0.2.8 "
        "(optax.contrib included) has an FTRL: optimlab's torch and optax presets keep "
        "Keras's numbers with those peers' L2 weight decay, g + wd*p, which FTRL, solving p "
        "from its sums rather than stepping, turns into another path than Keras's decay of p "
        "before the step.",
        ftrl_weight_decay,
    ),
    Difference(
        "L-BFGS: torch's iteration and optax's",
        "torch.optim.LBFGS makes up to max_iter=20 iterations per step with stopping rules "
        "(tolerance_grad, tolerance_change, max_eval), keeps 100 pairs and skips those with "
        "y.s <= 1e-10; its first step is min(1, 1/|g|_1) lr along -g, later ones start at lr, "
        "and without line_search_fn the step is that fixed lr. optax.lbfgs is one iteration "
        "per update without stopping rules, keeps 10 pairs (all of them: rho = 0 where y.s "
        "== 0), scales H_0 by min(1, 1/|g|_2) at first, and runs a zoom line search (20 "
        "evaluations at most, starting at 1, Hager and Zhang's approximate decrease near the "
        "minimum) whose last value and gradient the next update reuses. optimlab's presets "
        "reproduce both (optimlab.LBFGS; optimlab.torch.LBFGS is torch's bit for bit). The "
        "table counts optax's evaluations as optimlab makes them (value_and_grad_from_state "
        "reuses the line search's); Keras has no L-BFGS.",
        lbfgs_conventions,
    ),
    Difference(
        "ASGD: the step size takes a new learning rate one update late",
        "torch.optim.ASGD (the one peer with ASGD) computes eta = lr / (1 + lambd lr t)^alpha "
        "and the averaging weight mu after each step and keeps them as state, so a scheduler's "
        "new learning rate reaches the step one update late; optimlab's ASGD does the same "
        "under every preset. torch keeps eta and mu as tensors of its default dtype: with the "
        "float32 default, float64 parameters get a float32-rounded eta (6e-8 relative); "
        "optimlab.torch.ASGD reproduces that, ol.ASGD computes eta in double precision.",
        asgd_step_size,
    ),
    Difference(
        "Norm clipping: three formulas",
        "Keras c*min(1/n, 1/c); PyTorch min(1, c/(n + 1e-6)) (clips a little even at n = c); "
        "optax g if n < c else g*c/n.",
        clipping_formulas,
    ),
    Difference(
        "Gradient accumulation with a schedule",
        "Keras evaluates the schedule at its micro-step counter, so with 2 accumulation steps "
        "the schedule runs twice as fast; optax.MultiSteps and optimlab count real updates.",
        accumulation_schedule,
    ),
    Difference(
        "Muon: momentum, shape factor, non-matrices, weight decay",
        "Keras sums its momentum, PyTorch keeps an EMA (via lerp), optax an EMA whose Nesterov "
        "term is bias-corrected: after the orthogonalisation only the direction of the "
        "momentum counts, and each form weighs a new gradient against the history otherwise "
        "(the cosine column). The update O of a "
        "(rows, cols) matrix is scaled by 0.2 sqrt(max(rows, cols)) in Keras, by "
        "sqrt(max(1, rows / cols)) in PyTorch (its weights are (out, in)) and by "
        "sqrt(max(1, cols / rows)) in optax (its weights are (in, out)). PyTorch runs "
        "Newton-Schulz in bfloat16 and refuses non-matrices; Keras gives them AdamW, optax "
        "NAdamW. Keras takes the Frobenius norm in float32 even for float64 weights.",
        muon_conventions,
    ),
    Difference(
        "Step counts: per parameter (PyTorch) or global (Keras, optax)",
        "PyTorch's bias correction uses each parameter's own step count, which does not advance "
        "while the parameter has no gradient; Keras uses the optimizer's update count.",
        per_parameter_steps,
    ),
    Difference(
        "EMA of the weights under gradient accumulation",
        "Keras updates its EMA on every call, micro-steps included (with the momentum still 0 "
        "during the first k calls), so it averages over fewer real updates; optimlab and torch's "
        "AveragedModel (called after each optimizer.step) take one EMA step per update.",
        keras_ema_micro_steps,
    ),
    Difference(
        "Bias correction in float32",
        "Keras casts beta to the variable's dtype before beta^t: float32 Adam uses "
        "1 - 0.99900001^t where PyTorch and optax use 1 - 0.999^t (in double precision). The "
        "step factor differs by a few 1e-6 for hundreds of steps, which moves float32 Adam "
        "beyond 1e-5 of the exact rule in the conformance runs; optimlab's keras preset "
        "rounds like Keras.",
        float32_powers,
    ),
    Difference(
        "Lamb: the weight decay before the step or inside the trust ratio",
        "Keras's Lamb takes its base class's decay p -= lr*wd*p before the step, and the trust "
        "ratio ||p||/||r|| then sees the decayed weights; optax.lamb (the paper's Algorithm 2) "
        "adds wd*p to the direction r before the ratio, so every step has the norm lr*||p||: "
        "with a zero gradient the direction is the decay alone and p shrinks by (1 - lr) per "
        "step whatever wd is. Keras's default epsilon is 1e-7, optax's 1e-6. optimlab: "
        "weight_decay_in_trust_ratio (torch has no Lamb; its preset follows optax).",
        lamb_weight_decay,
    ),
    Difference(
        "Lamb: the trust ratio of a NaN norm",
        "Both peers take the ratio 1 where ||p|| or ||r|| is 0. Keras tests ||p|| > 0 and "
        "||r|| > 0, which a NaN norm fails, so the ratio is 1 and the finite elements still "
        "move; optax tests ||p|| == 0 or ||r|| == 0, so the ratio is NaN and the whole "
        "parameter turns NaN. optimlab: nan_trust_ratio.",
        lamb_nan_norm,
    ),
    Difference(
        "Schedule-Free AdamW: the averaging weight",
        "Both peers keep y (the parameter), z and v, and recover x = (y - (1 - beta_1) z) / "
        "beta_1. Keras 3.15 averages x = (1 - c) x + c z with c = 1/t; optax weights z_t by "
        "lr_max^2 (weight_lr_power=2, the largest learning rate so far), as the authors' "
        "code does, so a warmup's small steps count little. optimlab: weight_lr_power "
        "(0 is Keras's 1/t).",
        schedule_free_averaging,
    ),
    Difference(
        "Schedule-Free AdamW: the warmup",
        "Keras multiplies lr by min(t / W, 1), t counted from 1. optax builds "
        "warmup_constant_schedule(0, lr, W) and evaluates it at t - 1 in the z step (the "
        "first step is 0) but at t for lr_max; its fraction is a float32 number (for a "
        "Python-float lr the whole schedule is float32), which XLA computes with fused "
        "multiply-adds. optimlab: warmup_from_zero, warmup_dtype. (optax evaluates any "
        "schedule given as its learning rate the same way, at t - 1 and at t; optimlab "
        "evaluates a schedule once per step, at t - 1, and does not reproduce that.)",
        schedule_free_warmup,
    ),
    Difference(
        "Schedule-Free AdamW: the weight decay",
        "Keras's base class shrinks the parameter y by lr * wd * y before the step, with the "
        "learning rate before warmup; z does not move, so the recovered x takes the decay "
        "divided by beta_1. optax (and the authors' code) add wd * y to the normalized "
        "gradient of the z step (with the warmed-up lr). optimlab: weight_decay_style.",
        schedule_free_weight_decay,
    ),
    Difference(
        "Schedule-Free AdamW with beta_1 = 0",
        "y = (1 - beta_1) z + beta_1 x is z itself at beta_1 = 0, and the method is AdamW with "
        "beta_1 = 0 whose average is not kept. Keras and optax recover x by dividing by "
        "beta_1, 0 / 0, and turn the parameters NaN at the first step; optimlab takes y = z "
        "(eval_params then refuses: x is not recoverable).",
        schedule_free_beta_1_zero,
    ),
    Difference(
        "Keras's schedules in float32",
        "Keras 3 computes a schedule in the dtype of its initial learning rate as a tensor: "
        "float32 in its default configuration (its JAX, PyTorch and NumPy backends). With JAX's "
        "64-bit mode, as optimlab's conformance tests run Keras, a Python float is a float64 "
        "tensor, yet ops.cos, floor and ceil still run in float32: ExponentialDecay, "
        "PiecewiseConstantDecay, PolynomialDecay and InverseTimeDecay then equal optimlab's "
        "values, the two cosine schedules do not. optimlab computes every schedule in float64 "
        "under every preset and does not reproduce Keras's float32 rounding: near the end of a "
        "cosine decay 1 + cos cancels and the float32 value is mostly rounding, which Keras's "
        "own backends do not share: their float32 cos differ there by hundreds of ulps, and "
        "PyTorch's float32 log puts a CosineDecayRestarts step in another period (python -m "
        "tests.keras_suite.schedule_backends prints them). For float32 parameters both "
        "learning rates are float32 numbers and the parameters stay within float32 rounding "
        "of each other (last row).",
        keras_differences.float32_schedules,
    ),
    Difference(
        "The Keras API on NumPy arrays",
        "Calls that optimlab's Keras dialect (preset='keras') answers otherwise than Keras "
        "3.15, on purpose. The Keras column is what Keras itself does "
        "(tests/keras_suite/test_keras_differences.py runs it); Keras's own tests that meet "
        "these rows are listed in tests/keras_suite/registry.py.",
        keras_differences.api_table,
    ),
]


def _cell(text) -> str:
    """A Markdown table cell: a literal ``|`` (as in ``|g|``) must not end the cell."""
    return str(text).replace("|", "\\|")


def render(markdown: bool = False) -> str:
    """All differences as text (or Markdown tables)."""
    out = []
    for d in DIFFERENCES:
        header, rows = d.experiment()
        if markdown:
            out.append(f"### {d.title}\n\n{d.explanation}\n")
            out.append("| " + " | ".join(_cell(x) for x in header) + " |")
            out.append("|" + "---|" * len(header))
            out.extend("| " + " | ".join(_cell(x) for x in r) + " |" for r in rows)
            out.append("")
        else:
            out.append(f"== {d.title}\n{d.explanation}")
            widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
            for r in [header, *rows]:
                out.append(
                    "  " + "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True))
                )
            out.append("")
    return "\n".join(out)
