"""``POST /api/anatomy``: one run's state at step k, from a real optimlab optimizer stepped by
``apply_gradients`` (the same points as the trajectories, bit for bit).

At step k the point is p_k (after k updates); update k+1 uses g_{k+1} = grad f(p_k) +
noise_{k+1} and gives p_{k+1}. The effective learning rate is per coordinate, with the state
of update k+1 (the rule's own form and bias correction)::

    Adagrad    eff = lr_t / sqrt(G + eps)          (PyTorch: lr_t / (sqrt(G) + eps)),  times g
    RMSprop    eff = lr / sqrt(v + eps)            (centered: v - gbar^2; PyTorch: eps outside)
    Adam(W)    eff = alpha * bc1 / (sqrt(v) * root_scale + eps)      times m_hat = m / bc1
               (= lr / (sqrt(v_hat) + eps) in the paper's form, Keras's epsilon-hat form else)
    Nadam      eff = lr / (sqrt(v / bc2) + eps)    times (c_g g + c_m m) / lr
    Adamax     eff = lr / (u + eps)                (PyTorch, optax: lr / u), times m / bc1
    RAdam      eff = lr * r_t * sqrt(bc2) / (sqrt(v) + eps)   (optax: lr * r_t /
               (sqrt(v / bc2 + eps_root) + eps)), or lr while rho_t is below the threshold,
               times m_hat = m / bc1 (Nesterov: beta_1 m / (1 - beta_1^(t+1))
               + (1 - beta_1) g / bc1)
    Adadelta   eff = lr * sqrt(a + eps) / sqrt(v + eps)   (a before the update), times g
    Rprop      eff = the step size (after the update), times sign(g) (0 where the sign flipped);
               optax preset: eff = |prev| before the update (optax 0.2.8 applies the previous
               update), times its sign (0 where the sign flipped, read off prev after = 0)
    Ftrl       eff = 1 / quadratic = lr / (n^(-lr_power) + beta + 2 l2 lr)  (n after the
               update), times p_k / eff + z - clip(z, -l1, l1): FTRL solves p_{k+1} =
               -(z - clip(z)) / quadratic rather than stepping; the factor is g itself where
               there is no regularization, the learning rate stays and n starts at 0
               (FTRL-Proximal is then Adagrad with these rates, McMahan et al. 2013)
    ScheduleFreeAdamW  eff = lr_t / (sqrt(v / bc2) + eps) of the z step (the "hat" form:
               lr_t sqrt(bc2) / (sqrt(v) + eps)), times g: z_{k+1} = z_k - eff * g without
               decay; the point itself moves to (1 - beta_1) z + beta_1 x
    ASGD       eff = eta, the step size of update t (lr at the first, then lr_{t-1} / (1 +
               lambd lr_{t-1} (t - 1))^alpha), times g + lambd * p (the shrinking of the
               weights by 1 - lambd * eta is the lambd * p part)

    any other  eff = lr, times (p_k - p_{k+1}) / lr: the step the optimizer took, in units of
               the learning rate (an optimizer of the registry without a form of its own
               here; its state shows in the slots)

so that p_{k+1} = p_k - eff * preconditioned where there is no weight decay or momentum
(Schedule-Free: z_{k+1} = z_k - eff * preconditioned). SGD (Momentum, NAG: the velocity and
the look-ahead show its step) and Lion (a sign step of size lr) have no effective rate.
"""

from __future__ import annotations

import math

import numpy as np

from ..rules import radam as radam_rule
from ..rules.adam import rounded
from . import requests as rq
from .errors import RequestError
from .runs import common_run_fields

__all__ = ["anatomy"]

_KEYS = (
    "surface",
    "expression",
    "domain",
    "start",
    "steps",
    "gradient_noise",
    "seed",
    "optimizer",
    "step",
)
_BOUND = 1e6

#: the optimizers whose anatomy has no effective learning rate (see the module docstring)
NO_EFFECTIVE_RATE = ("SGD", "Lion")


def _slots(opt) -> dict:
    """The optimizer's buffers by slot name (one parameter)."""
    slots = opt.state_dict()["slots"]
    return {key.split("/", 1)[0]: value.copy() for key, value in slots.items()}


def _effective(opt, base: str, t: int, lr: float, g, before: dict, after: dict):
    """(effective_lr, preconditioned) of update t, or (None, None)."""
    hyper = opt._rule_hyperparameters()
    if base == "Adagrad":
        lr_t, eps, inside = opt.rule.scalars(t, lr, **hyper)
        acc = after["accumulator"]
        eff = lr_t / np.sqrt(acc + eps) if inside else lr_t / (np.sqrt(acc) + eps)
        return eff, g
    if base == "RMSprop":
        v = after["velocity"]
        d = v - after["average_gradient"] ** 2 if hyper["centered"] else v
        eps = hyper["epsilon"]
        eff = lr / np.sqrt(d + eps) if hyper["epsilon_in_sqrt"] else lr / (np.sqrt(d) + eps)
        return eff, g
    if base in ("Adam", "AdamW"):
        numbers = opt.rule.scalars(t, lr, **hyper)
        alpha, root_scale, eps = numbers[0], numbers[5], numbers[6]
        power = hyper.get("power_dtype")
        bc1 = 1.0 - rounded(hyper["beta_1"], power) ** t if hyper["bias_correction"] else 1.0
        v_used = after["v_max"] if hyper["amsgrad"] else after["v"]
        eff = alpha * bc1 / (np.sqrt(v_used) * root_scale + eps)
        return eff, after["m"] / bc1
    if base == "Nadam":
        numbers, _ = opt.rule.scalars(t, lr, before["__step_state__"], **hyper)
        c_g, c_m, inv_bc2, eps = numbers[0], numbers[1], numbers[6], numbers[7]
        eff = lr / (np.sqrt(after["v"] * inv_bc2) + eps)
        if lr == 0.0:
            return eff, np.zeros(2)
        return eff, (c_g * g + c_m * after["m"]) / lr
    if base == "Adamax":
        power = hyper.get("power_dtype")
        bc1 = 1.0 - rounded(hyper["beta_1"], power) ** t
        u = after["u"]
        eps = hyper["epsilon"]
        eff = lr / u if hyper["epsilon_in_max"] else lr / (u + eps)
        return eff, after["m"] / bc1
    if base == "RAdam":
        numbers = opt.rule.scalars(t, lr, **hyper)
        v_scale, eps_root, eps, rectified = numbers[6:10]
        power = hyper.get("power_dtype")
        b1, beta_1 = rounded(hyper["beta_1"], power), hyper["beta_1"]
        bc1 = 1.0 - b1**t
        m_hat = after["m"] / bc1
        if hyper["nesterov"]:
            m_hat = beta_1 * after["m"] / (1.0 - b1 ** (t + 1)) + (1.0 - beta_1) * g / bc1
        if not rectified:
            return np.full(2, lr), m_hat
        _, r = radam_rule.rectification(
            t,
            beta_2=hyper["beta_2"],
            threshold=hyper["threshold"],
            threshold_inclusive=hyper["threshold_inclusive"],
            power_dtype=power,
        )
        if hyper["epsilon_style"] == "hat":
            r = r * math.sqrt(1.0 - rounded(hyper["beta_2"], power) ** t)
        return lr * r / (np.sqrt(after["v"] / v_scale + eps_root) + eps), m_hat
    if base == "Rprop":
        step = after["step_size"]
        if not hyper["delayed_update"]:
            return step, np.sign(after["prev"])
        # the previous update (prev before), where the sign held: prev after is 0 where it
        # flipped (and where the gradient the rule saw is exactly 0, which this misreads)
        prev = before["prev"]
        moved = (prev != 0) & (after["prev"] != 0)
        return np.where(moved, np.abs(prev), step), np.where(moved, np.sign(prev), 0.0)
    if base == "Ftrl":
        numbers = opt.rule.scalars(t, lr, **hyper)
        exponent, root, fixed, fixed_quadratic, l1, l2_total = (
            numbers[i] for i in (1, 2, 3, 5, 6, 8)
        )
        if fixed:
            quadratic = np.full(2, fixed_quadratic)
        else:
            n = after["accumulator"]
            power = np.sqrt(n) if root else n**exponent
            quadratic = power / lr + l2_total
        z = after["linear"]
        beyond = z - np.clip(z, -l1, l1)
        return 1.0 / quadratic, before["__point__"] * quadratic + beyond
    if base == "ScheduleFreeAdamW":
        numbers, _ = opt.rule.scalars(t, lr, before["__step_state__"], **hyper)
        v_scale, eps, lr_z = numbers[2], numbers[3], numbers[4]
        return lr_z / (np.sqrt(after["v"] / v_scale) + eps), g
    if base == "ASGD":  # p * (1 - lambd eta) - eta g = p - eta (g + lambd p)
        numbers, _ = opt.rule.scalars(t, lr, before["__step_state__"], **hyper)
        return np.full(2, numbers[1]), g + hyper["lambd"] * before["__point__"]
    if base == "Adadelta":
        eps = hyper["epsilon"]
        eff = (
            lr
            * np.sqrt(before["accumulated_delta"] + eps)
            / np.sqrt(after["accumulated_grad"] + eps)
        )
        return eff, g
    return None, None


def _step_in_learning_rates(lr: float, point, next_point):
    """(lr, (p_k - p_{k+1}) / lr) for both coordinates, or (None, None) where lr is not a
    positive finite number (a step of size 0 has no direction)."""
    if not (math.isfinite(lr) and lr > 0.0):
        return None, None
    return np.full(2, lr), (point - next_point) / lr


def anatomy(body: dict) -> dict:
    """The state of one run at ``step``; see the module docstring."""
    rq.obj(body, "body")
    rq.keys(body, _KEYS)
    surface, _source, start, steps, noise, seed = common_run_fields(body)
    if "optimizer" not in body:
        raise RequestError("optimizer", "optimizer is required (an optimizer object)")
    spec = rq.optimizer_of(body["optimizer"], "optimizer", steps)
    if "step" not in body:
        raise RequestError("step", f"step is required: an integer in [0, {steps}]")
    k = rq.integer(body, "step", "", 0, 0, steps)
    rq.budget("step", f"step (here {k})", k, rq.LIMITS["steps"], rq.work_factor(surface))
    opt = spec.make(nan_policy="propagate")
    z = noise * np.random.default_rng(seed).standard_normal((k + 1, 2)) if noise > 0 else None
    p = np.array(start, dtype=np.float64)
    opt.build([p])  # what the first apply_gradients does: the slots at their initial values
    with np.errstate(all="ignore"):
        for t in range(1, k + 1):
            g = surface.gradient(p)
            if z is not None:
                g = g + z[t - 1]
            opt.apply_gradients([(g, p)])
            if not (np.isfinite(g).all() and np.abs(p).max() <= _BOUND):
                raise RequestError(
                    "step",
                    f"step must be an integer in [0, {t - 1}]: this run diverged at step {t}",
                )
        before = _slots(opt)
        point = p.copy()
        lr = float(opt.learning_rate)
        g = surface.gradient(p)
        if z is not None:
            g = g + z[k]
        velocity = before.get("momentum")
        lookahead = None
        kwargs = opt.get_config()
        if velocity is not None and kwargs.get("nesterov"):
            beta = kwargs["momentum"]
            if kwargs.get("momentum_style") == "lr_outside":
                lookahead = point - lr * beta * velocity
            else:
                lookahead = point + beta * velocity
        step_state = {}
        initial = getattr(opt.rule, "STEP_STATE", None)
        if initial is not None:
            saved = opt.state_dict()["step_state"]
            step_state["__step_state__"] = (
                tuple(saved[0]) if saved else tuple(v for _, v in initial)
            )
        opt.apply_gradients([(g.copy(), p)])
        after = _slots(opt)
        state = {**before, **step_state, "__point__": point}
        eff, pre = _effective(opt, spec.base, k + 1, lr, g, state, after)
        if eff is None and spec.base not in NO_EFFECTIVE_RATE:
            eff, pre = _step_in_learning_rates(lr, point, p)
    return {
        "step": k,
        "label": spec.label,
        "point": point,
        "gradient": g,
        "next_point": p.copy(),
        "learning_rate": lr if math.isfinite(lr) else None,
        "velocity": velocity,
        "lookahead": lookahead,
        "effective_lr": eff,
        "preconditioned": pre,
        "state": before,
        "next_state": after,
    }
