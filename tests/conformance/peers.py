"""Peer runners for the conformance tests: run torch.optim, Keras 3 or optax for N calls.

``run_peer(peer, optimizer, kwargs, params0, grads, plan)`` feeds ``grads[c]`` to the peer's
optimizer at call ``c`` and returns the parameters after the last call (and the EMA weights where
the peer keeps them). ``kwargs`` use optimlab's names; each runner translates them into the peer's
own API and raises :class:`NotExpressible` for what the peer has no way to express.

Pipeline of one *update* (every call, or every k-th call with ``gradient_accumulation_steps=k``):
mean of the accumulated gradients -> clipping -> weight decay -> update rule -> EMA, with the
learning rate ``plan.lr_for_call(c, k)``.

How each peer is driven (details that matter at float tolerance):

torch
    ``torch.optim.<Opt>(..., foreach=False)``; ``.grad`` set by hand; ``group["lr"]`` set before
    every ``step()``; accumulation done here (running sum in Keras's order, then ``/ k``);
    ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``; EMA through
    ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``. float64 runs are made
    with ``torch.set_default_dtype(torch.float64)`` (restored afterwards) because torch keeps its
    scalar state (``step``, NAdam's ``mu_product``) in the *default* dtype, not the parameter's:
    with the float32 default, NAdam's ``mu_product`` is rounded to float32 every step.
Keras 3 (JAX backend, eager)
    ``keras.Variable`` parameters; ``keras.config.set_floatx`` set to the run's dtype while the
    optimizer is built and run (so the learning-rate variable and the schedule are in that dtype);
    the learning rate is a float until ``change_at``, ``opt.learning_rate = lr1`` there, and a
    ``LearningRateSchedule`` from ``schedule_at`` on (evaluated by Keras at its micro-step counter,
    hence the ``// k``); Keras accumulates, clips, decays and keeps the EMA itself.
optax
    ``optax.inject_hyperparams`` around a factory of ``learning_rate`` only (every other
    hyperparameter stays a Python float, as in plain ``optax.adam(lr, b1=...)`` use);
    ``state.hyperparams["learning_rate"]`` set before every update; accumulation done here.

A key missing from ``kwargs`` takes the peer's default, as optimlab's ``preset=<peer>`` does
(``optimlab.presets``): e.g. epsilon 1e-8 in torch Adam, 1e-7 in Keras; AdamW's weight decay
1e-2 (torch) / 0.004 (Keras) / 1e-4 (optax), optax Lion's 1e-3 (an explicit ``None`` or 0 means
no decay). Missing ``weight_decay_mode``: Keras "decoupled"; torch "l2" ("decoupled" for AdamW);
optax "decoupled" for Adam, AdamW, Nadam, Lion, Muon and Lamb (optax.adamw / nadamw / lion /
contrib.muon / lamb, the decay inside the alias), "l2" otherwise
(``chain(add_decayed_weights, alias)``). Rprop: ``torch.optim.Rprop`` (``etas``, ``step_sizes``;
no weight decay) and ``optax.rprop`` (L2 decay through that chain only); Keras has none.
Ftrl: ``keras.optimizers.Ftrl`` only (neither torch.optim nor optax 0.2.8 has an FTRL).
ASGD: ``torch.optim.ASGD`` only (``lambd``, ``alpha``, ``t0``; L2 decay); its result also has
``"average"``, the averaged parameters ``ax`` of its state.
Missing ``ema_momentum``: 0.99 for torch too (optimlab's
common default, Keras's; ``get_ema_multi_avg_fn`` would default to 0.999).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dataclasses import dataclass, replace  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

__all__ = ["NotExpressible", "LrPlan", "run_peer", "PEERS", "OPTIMIZERS"]

PEERS = ("torch", "keras", "optax")


class NotExpressible(Exception):
    """The peer cannot express this configuration (the test skips that pairing)."""


@dataclass(frozen=True)
class LrPlan:
    """Learning rate per call: lr0, then lr1 from ``change_at``, then an exponential decay of lr1
    from ``schedule_at`` (evaluated at the number of real updates already applied)."""

    lr0: float
    lr1: float
    change_at: int = 70
    schedule_at: int = 140
    decay_steps: int = 10
    decay_rate: float = 0.9

    def __post_init__(self):
        if not 0 <= self.change_at <= self.schedule_at:
            raise ValueError(
                f"need 0 <= change_at <= schedule_at, got {self.change_at}, {self.schedule_at}"
            )
        if self.decay_steps <= 0:
            raise ValueError(f"decay_steps must be > 0, got {self.decay_steps}")

    def lr_for_call(self, call: int, accumulation_steps: int = 1) -> float:
        if call < self.change_at:
            return float(self.lr0)
        if call < self.schedule_at:
            return float(self.lr1)
        real_updates = call // accumulation_steps
        return float(self.lr1) * float(self.decay_rate) ** (real_updates / self.decay_steps)


# --------------------------------------------------------------------------------------------
# kwargs parsing shared by the three peers
# --------------------------------------------------------------------------------------------

_CONVENTION_KEYS = frozenset(
    {
        "momentum_style",
        "epsilon_style",
        "epsilon_in_sqrt",
        "epsilon_in_max",
        "amsgrad_max",
        "threshold_inclusive",
        "clamp_every_step",
        "compare_with",
        "delayed_update",
        "nan_policy",
        "preset",
    }
)
_COMMON_KEYS = frozenset(
    {
        "weight_decay",
        "weight_decay_mode",
        "clipnorm",
        "clipvalue",
        "global_clipnorm",
        "use_ema",
        "ema_momentum",
        "gradient_accumulation_steps",
        "maximize",
        "loss_scale_factor",
        "ema_overwrite_frequency",
    }
)
_ADAM_KEYS = frozenset({"beta_1", "beta_2", "epsilon", "amsgrad", "bias_correction"})
_RULE_KEYS = {
    "SGD": frozenset({"momentum", "nesterov", "dampening"}),
    "Adagrad": frozenset({"initial_accumulator_value", "epsilon", "lr_decay"}),
    "RMSprop": frozenset({"rho", "momentum", "epsilon", "centered"}),
    "Adam": _ADAM_KEYS,
    "AdamW": _ADAM_KEYS,
    "Nadam": frozenset({"beta_1", "beta_2", "epsilon", "momentum_decay"}),
    "Adamax": frozenset({"beta_1", "beta_2", "epsilon"}),
    "Adadelta": frozenset({"rho", "epsilon"}),
    "Lion": frozenset({"beta_1", "beta_2"}),
    "Muon": frozenset(
        {
            "momentum",
            "nesterov",
            "ns_steps",
            "rms_rate",
            "shape_scaling",
            "adam_beta_1",
            "adam_beta_2",
            "adam_weight_decay",
            "adam_lr_ratio",
            "epsilon",
        }
    ),
    "RAdam": frozenset({"beta_1", "beta_2", "epsilon", "epsilon_root", "threshold", "nesterov"}),
    "Rprop": frozenset({"eta_minus", "eta_plus", "min_step_size", "max_step_size"}),
    "ASGD": frozenset({"lambd", "alpha", "t0"}),
    "Lamb": frozenset(
        {"beta_1", "beta_2", "epsilon", "weight_decay_in_trust_ratio", "nan_trust_ratio"}
    ),
    "Adafactor": frozenset(
        {
            "beta_2_decay",
            "epsilon_1",
            "epsilon_2",
            "clip_threshold",
            "relative_step",
            "multiply_by_parameter_scale",
            "factored",
            "min_dim_size_to_factor",
            "momentum",
        }
    ),
    "Ftrl": frozenset(
        {
            "learning_rate_power",
            "initial_accumulator_value",
            "l1_regularization_strength",
            "l2_regularization_strength",
            "l2_shrinkage_regularization_strength",
            "beta",
        }
    ),
    "ScheduleFreeAdamW": frozenset(
        {
            "beta_1",
            "beta_2",
            "epsilon",
            "warmup_steps",
            "warmup_from_zero",
            "warmup_dtype",
            "weight_lr_power",
            "weight_decay_style",
            "weight_sum_dtype",
            "epsilon_style",
        }
    ),
}

#: the optimizers the runners drive (those with a kwargs table above)
OPTIMIZERS = tuple(_RULE_KEYS)

#: optimlab's Adafactor options that only optax.adafactor has
_OPTAX_ONLY_ADAFACTOR = (
    "multiply_by_parameter_scale",
    "factored",
    "min_dim_size_to_factor",
    "momentum",
)


def _default_wd_mode(peer: str, optimizer: str) -> str:
    """The weight-decay mode of each peer when ``weight_decay_mode`` is not given."""
    if peer == "keras" or optimizer in ("Muon", "Lamb", "Adafactor", "ScheduleFreeAdamW"):
        return "decoupled"
    if peer == "torch":
        return "decoupled" if optimizer in ("AdamW", "Lion") else "l2"
    return "decoupled" if optimizer in ("Adam", "AdamW", "Nadam", "Lion") else "l2"


@dataclass(frozen=True)
class _Common:
    weight_decay: float | None  # None: no decay requested; a float may still be 0.0
    wd_mode: str  # "decoupled" | "l2" (meaningful only when weight_decay is non-zero)
    wd_given: bool  # whether "weight_decay" is a key at all (absent: the peer's default)
    clipnorm: float | None
    clipvalue: float | None
    global_clipnorm: float | None
    use_ema: bool
    ema_momentum: float  # absent: 0.99 (Keras's default) for every peer
    k: int  # gradient accumulation steps, 1 when off
    maximize: bool
    loss_scale_factor: float | None
    ema_overwrite_frequency: int | None

    @property
    def has_wd(self) -> bool:
        return self.weight_decay is not None and self.weight_decay != 0


def _split_kwargs(peer: str, optimizer: str, kwargs: dict) -> tuple[_Common, dict]:
    if optimizer not in _RULE_KEYS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    if "learning_rate" in kwargs:
        raise ValueError("learning_rate comes from the LrPlan, not from kwargs")
    allowed = _RULE_KEYS[optimizer] | _COMMON_KEYS | _CONVENTION_KEYS
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"unknown kwargs for {optimizer}: {unknown}")

    wd = kwargs.get("weight_decay")
    mode = kwargs.get("weight_decay_mode")
    if mode is None:
        mode = _default_wd_mode(peer, optimizer)
    if mode not in ("decoupled", "l2"):
        raise ValueError(f"weight_decay_mode must be 'decoupled' or 'l2', got {mode!r}")
    k = kwargs.get("gradient_accumulation_steps")
    k = 1 if k is None else int(k)
    if k < 1:
        raise ValueError(f"gradient_accumulation_steps must be >= 1, got {k}")
    clips = [kwargs.get(n) for n in ("clipnorm", "clipvalue", "global_clipnorm")]
    if sum(c is not None for c in clips) > 1:
        # Keras refuses it and the order of several clips is not part of the contract.
        raise NotExpressible("more than one of clipnorm / clipvalue / global_clipnorm")
    common = _Common(
        weight_decay=None if wd is None else float(wd),
        wd_mode=mode,
        wd_given="weight_decay" in kwargs,
        clipnorm=_opt_float(kwargs.get("clipnorm")),
        clipvalue=_opt_float(kwargs.get("clipvalue")),
        global_clipnorm=_opt_float(kwargs.get("global_clipnorm")),
        use_ema=bool(kwargs.get("use_ema", False)),
        ema_momentum=float(0.99 if kwargs.get("ema_momentum") is None else kwargs["ema_momentum"]),
        k=k,
        maximize=bool(kwargs.get("maximize", False)),
        loss_scale_factor=_opt_float(kwargs.get("loss_scale_factor")),
        ema_overwrite_frequency=(
            None
            if kwargs.get("ema_overwrite_frequency") is None
            else int(kwargs["ema_overwrite_frequency"])
        ),
    )
    if not common.use_ema:
        common = replace(common, ema_overwrite_frequency=None)  # Keras ignores it without EMA
    rule = {n: v for n, v in kwargs.items() if n in _RULE_KEYS[optimizer]}
    return common, rule


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _neutral(rule: dict, key: str, neutral: Any = 0) -> bool:
    v = rule.get(key)
    return v is None or v == neutral


def _require_neutral(peer: str, rule: dict, key: str, neutral: Any = 0):
    if not _neutral(rule, key, neutral):
        raise NotExpressible(f"{peer} has no {key} (got {rule[key]!r})")


def _check_dtype(params0) -> np.dtype:
    dtypes = {np.asarray(p).dtype for p in params0}
    if len(dtypes) != 1:
        raise ValueError(f"params0 must all have one dtype, got {dtypes}")
    (dt,) = dtypes
    if dt not in (np.float32, np.float64):
        raise ValueError(f"params0 must be float32 or float64, got {dt}")
    return np.dtype(dt)


def _accumulate(acc, grads):
    """Running sum in Keras's order: acc <- g + acc, starting from zeros."""
    if acc is None:
        acc = [np.zeros_like(g) for g in grads]
    return [np.asarray(g + a) for g, a in zip(grads, acc, strict=True)]


# --------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------


def _torch_optimizer(optimizer: str, c: _Common, rule: dict, params, lr0: float):
    import torch

    if optimizer in ("Lion", "Lamb", "Ftrl", "ScheduleFreeAdamW"):
        raise NotExpressible(f"torch.optim has no {optimizer}")
    if optimizer == "Muon":
        return _torch_muon(c, rule, params, lr0)
    if optimizer == "Adafactor":
        return _torch_adafactor(c, rule, params, lr0)
    if c.loss_scale_factor not in (None, 1.0):
        raise NotExpressible("torch has no loss_scale_factor")
    if c.ema_overwrite_frequency is not None:
        raise NotExpressible("torch's AveragedModel never writes the average back")
    _require_neutral("torch", rule, "bias_correction", True)
    kw: dict[str, Any] = {"lr": lr0, "foreach": False, "maximize": c.maximize}

    decoupled = c.has_wd and c.wd_mode == "decoupled"
    if optimizer == "Rprop":  # no weight_decay argument at all
        if c.has_wd:
            raise NotExpressible("torch Rprop has no weight decay")
        etas = (float(rule.get("eta_minus", 0.5)), float(rule.get("eta_plus", 1.2)))
        steps = (float(rule.get("min_step_size", 1e-6)), float(rule.get("max_step_size", 50.0)))
        return torch.optim.Rprop(params, etas=etas, step_sizes=steps, **kw)
    if c.has_wd:
        if decoupled and optimizer not in ("Adam", "AdamW", "Nadam", "RAdam"):
            raise NotExpressible(f"torch {optimizer} has no decoupled weight decay")
        kw["weight_decay"] = c.weight_decay
    elif not (optimizer == "AdamW" and not c.wd_given):  # absent: torch AdamW's default 1e-2
        kw["weight_decay"] = 0.0

    def put(ours, theirs=None, conv=float):
        if ours in rule and rule[ours] is not None:
            kw[theirs or ours] = conv(rule[ours])

    if optimizer == "ASGD":
        put("lambd")
        put("alpha")
        put("t0")
        return torch.optim.ASGD(params, **kw)
    if optimizer == "SGD":
        momentum = float(rule.get("momentum") or 0.0)
        dampening = float(rule.get("dampening") or 0.0)
        nesterov = bool(rule.get("nesterov", False)) and momentum != 0  # momentum 0: plain SGD
        if nesterov and dampening != 0:
            raise NotExpressible("torch SGD: nesterov needs dampening == 0")
        kw.update(momentum=momentum, dampening=dampening, nesterov=nesterov)
        cls = torch.optim.SGD
    elif optimizer == "Adagrad":
        put("initial_accumulator_value")
        put("epsilon", "eps")
        put("lr_decay")
        cls = torch.optim.Adagrad
    elif optimizer == "RMSprop":
        put("rho", "alpha")
        put("momentum")
        put("epsilon", "eps")
        put("centered", conv=bool)
        cls = torch.optim.RMSprop
    elif optimizer in ("Adam", "AdamW"):
        kw["betas"] = (float(rule.get("beta_1", 0.9)), float(rule.get("beta_2", 0.999)))
        put("epsilon", "eps")
        put("amsgrad", conv=bool)
        if optimizer == "AdamW" and (decoupled or not c.wd_given):
            cls = torch.optim.AdamW
        else:
            kw["decoupled_weight_decay"] = decoupled
            cls = torch.optim.Adam
    elif optimizer == "Nadam":
        if "momentum_decay" in rule and rule["momentum_decay"] is None:
            raise NotExpressible("torch NAdam has no constant-momentum mode (momentum_decay=None)")
        kw["betas"] = (float(rule.get("beta_1", 0.9)), float(rule.get("beta_2", 0.999)))
        put("epsilon", "eps")
        put("momentum_decay")
        kw["decoupled_weight_decay"] = decoupled
        cls = torch.optim.NAdam
    elif optimizer == "Adamax":
        kw["betas"] = (float(rule.get("beta_1", 0.9)), float(rule.get("beta_2", 0.999)))
        put("epsilon", "eps")
        cls = torch.optim.Adamax
    elif optimizer == "Adadelta":
        put("rho")
        put("epsilon", "eps")
        cls = torch.optim.Adadelta
    elif optimizer == "RAdam":
        _require_neutral("torch", rule, "nesterov", False)
        _require_neutral("torch", rule, "epsilon_root", 0.0)
        _require_neutral("torch", rule, "threshold", 5.0)  # torch's is fixed: rho_t > 5
        kw["betas"] = (float(rule.get("beta_1", 0.9)), float(rule.get("beta_2", 0.999)))
        put("epsilon", "eps")
        kw["decoupled_weight_decay"] = decoupled
        cls = torch.optim.RAdam
    else:  # pragma: no cover
        raise AssertionError(optimizer)
    return cls(params, **kw)


def _torch_muon(c: _Common, rule: dict, params, lr0: float):
    """torch.optim.Muon: no maximize, no foreach, decoupled decay only (default 0.1); only
    matrices (its Adam-free design: the runner gives it 2-D parameters only)."""
    import torch

    if c.maximize:
        raise NotExpressible("torch Muon has no maximize")
    if c.loss_scale_factor not in (None, 1.0):
        raise NotExpressible("torch has no loss_scale_factor")
    if c.ema_overwrite_frequency is not None:
        raise NotExpressible("torch's AveragedModel never writes the average back")
    for key in ("adam_beta_1", "adam_beta_2", "adam_weight_decay", "adam_lr_ratio", "epsilon"):
        if key in rule:
            raise NotExpressible(f"torch Muon has no AdamW part ({key})")
    kw: dict[str, Any] = {"lr": lr0}
    if c.has_wd:
        kw["weight_decay"] = c.weight_decay
    elif c.wd_given:
        kw["weight_decay"] = 0.0
    for ours, theirs, conv in (
        ("momentum", "momentum", float),
        ("nesterov", "nesterov", bool),
        ("ns_steps", "ns_steps", int),
    ):
        if ours in rule:
            kw[theirs] = conv(rule[ours])
    if "rms_rate" in rule:
        raise NotExpressible("torch Muon's match_rms_adamw scale is fixed at 0.2")
    if rule.get("shape_scaling") == "rms":
        kw["adjust_lr_fn"] = "match_rms_adamw"
    return torch.optim.Muon(params, **kw)


def _adafactor_refusals(peer: str, rule: dict) -> None:
    """What neither Keras nor torch can express of optimlab's Adafactor options."""
    for key in _OPTAX_ONLY_ADAFACTOR:
        if key in rule:
            raise NotExpressible(f"{peer} Adafactor has no {key} (optax.adafactor's)")
    if rule.get("relative_step") is False:
        # Keras 3.15 takes min(lr, 1/sqrt(t)) again whatever its relative_step; torch always
        raise NotExpressible(f"{peer} Adafactor always takes the relative step min(lr, 1/sqrt(t))")
    if "clip_threshold" in rule and rule["clip_threshold"] is None:
        raise NotExpressible(f"{peer} Adafactor always clips its update")


def _torch_adafactor(c: _Common, rule: dict, params, lr0: float):
    """torch.optim.Adafactor (foreach=False): eps=(eps1, eps2), d the clipping threshold,
    decoupled decay only (param.mul_(1 - lr * weight_decay)), maximize."""
    import torch

    if c.loss_scale_factor not in (None, 1.0):
        raise NotExpressible("torch has no loss_scale_factor")
    if c.ema_overwrite_frequency is not None:
        raise NotExpressible("torch's AveragedModel never writes the average back")
    if c.has_wd and c.wd_mode != "decoupled":
        raise NotExpressible("torch Adafactor's weight decay is decoupled only")
    _adafactor_refusals("torch", rule)
    if "clip_threshold" in rule and float(rule["clip_threshold"]) < 1.0:
        raise NotExpressible("torch Adafactor's d must be >= 1")
    kw: dict[str, Any] = {"lr": lr0, "foreach": False, "maximize": c.maximize}
    kw["weight_decay"] = c.weight_decay if c.has_wd else 0.0
    if "beta_2_decay" in rule:
        kw["beta2_decay"] = float(rule["beta_2_decay"])
    eps1 = rule.get("epsilon_1")  # absent or None: torch's None (the dtype's machine epsilon)
    kw["eps"] = (None if eps1 is None else float(eps1), float(rule.get("epsilon_2", 1e-3)))
    if "clip_threshold" in rule:
        kw["d"] = float(rule["clip_threshold"])
    return torch.optim.Adafactor(params, **kw)


def _run_torch(optimizer, kwargs, params0, grads, plan, dtype):
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    c, rule = _split_kwargs("torch", optimizer, kwargs)
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype.type]
    previous_default = torch.get_default_dtype()
    torch.set_default_dtype(tdtype)
    try:
        module = torch.nn.Module()
        module.ps = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.tensor(np.array(p, dtype=dtype))) for p in params0]
        )
        params = list(module.ps)
        opt = _torch_optimizer(optimizer, c, rule, params, plan.lr_for_call(0, c.k))
        ema = None
        if c.use_ema:
            ema = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(c.ema_momentum))
        acc = None
        for call, gs in enumerate(grads):
            gs = [np.asarray(g, dtype=dtype) for g in gs]
            if c.k > 1:
                if (call + 1) % c.k != 0:
                    acc = _accumulate(acc, gs)
                    continue
                acc = acc or [np.zeros_like(g) for g in gs]
                gts = [
                    (torch.from_numpy(g) + torch.from_numpy(a)) / c.k
                    for g, a in zip(gs, acc, strict=True)
                ]
                acc = None
            else:
                gts = [torch.from_numpy(g.copy()) for g in gs]
            for p, g in zip(params, gts, strict=True):
                p.grad = g
            if c.global_clipnorm is not None:
                torch.nn.utils.clip_grad_norm_(params, c.global_clipnorm, foreach=False)
            if c.clipnorm is not None:
                for p in params:
                    torch.nn.utils.clip_grad_norm_([p], c.clipnorm, foreach=False)
            if c.clipvalue is not None:
                torch.nn.utils.clip_grad_value_(params, c.clipvalue, foreach=False)
            lr = plan.lr_for_call(call, c.k)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.step()
            if ema is not None:
                ema.update_parameters(module)
        out = [p.detach().numpy().copy() for p in params]
        ema_out = None
        if ema is not None:
            ema_out = [p.detach().numpy().copy() for p in ema.module.ps]
        result = {"params": out, "ema": ema_out}
        if optimizer == "ASGD":  # the averaged parameters, compared too
            result["average"] = [opt.state[p]["ax"].detach().numpy().copy() for p in params]
    finally:
        torch.set_default_dtype(previous_default)
    return result


# --------------------------------------------------------------------------------------------
# Keras 3
# --------------------------------------------------------------------------------------------

_KERAS_PLAN_SCHEDULE = None


def _keras_plan_schedule_class():
    """A LearningRateSchedule: lr1 * rate ** ((step // k) / decay_steps) in the float dtype."""
    global _KERAS_PLAN_SCHEDULE
    if _KERAS_PLAN_SCHEDULE is None:
        import keras
        from keras import ops

        class PlanExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
            def __init__(self, lr1, decay_steps, decay_rate, k, dtype):
                super().__init__()
                self.lr1, self.decay_steps, self.decay_rate = lr1, decay_steps, decay_rate
                self.k, self.dtype = k, dtype

            def __call__(self, step):
                lr1 = ops.convert_to_tensor(self.lr1, dtype=self.dtype)
                rate = ops.convert_to_tensor(self.decay_rate, dtype=self.dtype)
                real = ops.cast(ops.floor_divide(step, self.k), self.dtype)
                p = real / ops.cast(self.decay_steps, self.dtype)
                return ops.multiply(lr1, ops.power(rate, p))

            def get_config(self):
                return {
                    "lr1": self.lr1,
                    "decay_steps": self.decay_steps,
                    "decay_rate": self.decay_rate,
                    "k": self.k,
                    "dtype": self.dtype,
                }

        _KERAS_PLAN_SCHEDULE = PlanExponentialDecay
    return _KERAS_PLAN_SCHEDULE


#: the Schedule-Free conventions each peer has, fixed (optimlab's option: the peer's value)
_KERAS_SCHEDULE_FREE = {
    "warmup_from_zero": False,
    "warmup_dtype": None,
    "weight_lr_power": 0.0,
    "weight_decay_style": "before_step",
    "weight_sum_dtype": "parameter",
    "epsilon_style": "paper",
}
_OPTAX_SCHEDULE_FREE = {
    "warmup_from_zero": True,
    # inject_hyperparams holds the learning rate in a float64 array: only the warmup's
    # fraction is float32 (a Python-float learning rate would make all of it float32)
    "warmup_dtype": "float32_fraction",
    "weight_decay_style": "in_z_step",
    "weight_sum_dtype": "parameter",
    "epsilon_style": "paper",
}


def _schedule_free_refusals(peer: str, rule: dict, fixed: dict) -> None:
    for key, value in fixed.items():
        if key in rule and rule[key] != value:
            raise NotExpressible(f"{peer}'s Schedule-Free AdamW has {key}={value!r} only")


def _keras_optimizer(optimizer: str, c: _Common, rule: dict, lr0: float):
    import keras

    if optimizer == "RAdam":
        raise NotExpressible("Keras has no RAdam")
    if c.maximize:
        raise NotExpressible("Keras has no maximize")
    if c.use_ema and c.k > 1:
        raise NotExpressible(
            "Keras updates its EMA on every micro-step when accumulating gradients"
        )
    _require_neutral("Keras", rule, "bias_correction", True)
    kw: dict[str, Any] = {"learning_rate": float(lr0)}
    if c.has_wd:
        if c.wd_mode != "decoupled":
            raise NotExpressible("Keras weight decay is decoupled only (no l2 mode)")
        kw["weight_decay"] = c.weight_decay
    for name in ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor"):
        if getattr(c, name) is not None:
            kw[name] = getattr(c, name)
    if c.use_ema:
        kw["use_ema"] = True
        kw["ema_momentum"] = c.ema_momentum
        kw["ema_overwrite_frequency"] = c.ema_overwrite_frequency
    if c.k > 1:
        kw["gradient_accumulation_steps"] = c.k

    def put(ours, conv=float):
        if ours in rule and rule[ours] is not None:
            kw[ours] = conv(rule[ours])

    O = keras.optimizers
    if optimizer == "Rprop":
        raise NotExpressible("Keras has no Rprop")
    if optimizer == "ASGD":
        raise NotExpressible("Keras has no ASGD")
    if optimizer == "SGD":
        _require_neutral("Keras", rule, "dampening")
        put("momentum")  # Keras insists on a float
        put("nesterov", bool)
        cls = O.SGD
    elif optimizer == "Adagrad":
        _require_neutral("Keras", rule, "lr_decay")
        put("initial_accumulator_value")
        put("epsilon")
        cls = O.Adagrad
    elif optimizer == "RMSprop":
        put("rho")
        put("momentum")
        put("epsilon")
        put("centered", bool)
        cls = O.RMSprop
    elif optimizer in ("Adam", "AdamW"):
        put("beta_1")
        put("beta_2")
        put("epsilon")
        put("amsgrad", bool)
        # Keras AdamW is Adam plus a required weight_decay (the base class's decoupled decay);
        # absent: AdamW's default 0.004.
        if optimizer == "AdamW" and (c.has_wd or not c.wd_given):
            cls = O.AdamW
        else:
            cls = O.Adam
    elif optimizer == "Nadam":
        if "momentum_decay" in rule and rule["momentum_decay"] != 1:
            raise NotExpressible(
                "Keras Nadam's momentum schedule is fixed at 0.96^t (momentum_decay=1), "
                f"got momentum_decay={rule['momentum_decay']!r}"
            )
        put("beta_1")
        put("beta_2")
        put("epsilon")
        cls = O.Nadam
    elif optimizer == "Adamax":
        put("beta_1")
        put("beta_2")
        put("epsilon")
        cls = O.Adamax
    elif optimizer == "Adadelta":
        put("rho")
        put("epsilon")
        cls = O.Adadelta
    elif optimizer == "Lion":
        if "beta_1" in rule and not 0 < float(rule["beta_1"]) <= 1:
            raise NotExpressible("Keras Lion needs beta_1 in (0, 1]")
        put("beta_1")
        put("beta_2")
        cls = O.Lion
    elif optimizer == "Muon":
        for key in ("momentum", "rms_rate", "adam_beta_1", "adam_beta_2", "epsilon"):
            put(key)
        put("adam_weight_decay")
        put("adam_lr_ratio")
        put("nesterov", bool)
        put("ns_steps", int)
        cls = O.Muon
    elif optimizer == "Lamb":
        if rule.get("weight_decay_in_trust_ratio") and c.has_wd:
            raise NotExpressible("Keras's Lamb decays before the step, not in the trust ratio")
        if rule.get("nan_trust_ratio", "one") != "one":
            raise NotExpressible("Keras's Lamb takes the trust ratio 1 for a NaN norm")
        put("beta_1")
        put("beta_2")
        put("epsilon")
        cls = O.Lamb
    elif optimizer == "ScheduleFreeAdamW":
        _schedule_free_refusals("Keras", rule, _KERAS_SCHEDULE_FREE)
        for key in ("beta_1", "beta_2", "epsilon"):
            put(key)
        put("warmup_steps", int)
        cls = O.ScheduleFreeAdamW
    elif optimizer == "Adafactor":
        _adafactor_refusals("Keras", rule)
        if "epsilon_1" in rule and rule["epsilon_1"] is None:
            raise NotExpressible("Keras Adafactor's epsilon_1 is a number (no dtype epsilon)")
        for key in ("beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold"):
            put(key)
        cls = O.Adafactor
    elif optimizer == "Ftrl":
        for key in _RULE_KEYS["Ftrl"]:
            put(key)
        cls = O.Ftrl
    else:  # pragma: no cover
        raise AssertionError(optimizer)
    return cls(**kw)


def _run_keras(optimizer, kwargs, params0, grads, plan, dtype):
    """Keras's own ``apply`` traced once per learning-rate phase through ``stateless_apply``
    under ``jax.jit``, as Keras's JAX trainer runs it (eager ``apply`` with gradient
    accumulation re-traces its ``ops.cond`` on every call: 40 s per case instead of 1 s).

    The constant phases set the optimizer's learning-rate variable (Keras's float
    ``learning_rate`` setter, as a value in the state); the schedule phase replaces it with a
    ``LearningRateSchedule``, which changes the optimizer's variables, hence the second trace.
    """
    import jax
    import jax.numpy as jnp
    import keras

    c, rule = _split_kwargs("keras", optimizer, kwargs)
    dname = dtype.name
    previous_floatx = keras.config.floatx()
    keras.config.set_floatx(dname)
    try:
        variables = [keras.Variable(np.array(p, dtype=dtype), dtype=dname) for p in params0]
        opt = _keras_optimizer(optimizer, c, rule, plan.lr0)
        opt.build(variables)
        schedule_cls = _keras_plan_schedule_class()

        def start_phase():
            step = jax.jit(opt.stateless_apply)
            return step, [v.value for v in opt.variables], [v.value for v in variables]

        def end_phase(opt_values, train_values):
            for v, x in zip(opt.variables, opt_values, strict=True):
                v.assign(x)
            for v, x in zip(variables, train_values, strict=True):
                v.assign(x)

        step, opt_values, train_values = start_phase()
        lr_index = next(i for i, v in enumerate(opt.variables) if v is opt._learning_rate)
        for call, gs in enumerate(grads):
            if call == plan.change_at:
                opt_values[lr_index] = jnp.asarray(plan.lr1, dtype=dname)
            if call == plan.schedule_at:
                end_phase(opt_values, train_values)
                opt.learning_rate = schedule_cls(
                    float(plan.lr1), plan.decay_steps, float(plan.decay_rate), c.k, dname
                )
                step, opt_values, train_values = start_phase()
            train_values, opt_values = step(
                opt_values, [jnp.asarray(g, dtype=dtype) for g in gs], train_values
            )
        end_phase(opt_values, train_values)
        out = [np.array(v.value, dtype=dtype) for v in variables]
        ema_out = None
        if c.use_ema:
            ema_out = [np.array(a.value, dtype=dtype) for a in opt._model_variables_moving_average]
    finally:
        keras.config.set_floatx(previous_floatx)
    return {"params": out, "ema": ema_out}


# --------------------------------------------------------------------------------------------
# optax
# --------------------------------------------------------------------------------------------


def _optax_factory(optimizer: str, c: _Common, rule: dict, eps_in_sqrt: bool | None):
    """Return ``factory(learning_rate) -> GradientTransformation`` for inject_hyperparams."""
    import optax

    if optimizer == "Ftrl":
        raise NotExpressible("optax 0.2.8 has no FTRL (optax.contrib included)")
    if optimizer == "ASGD":
        raise NotExpressible("optax has no ASGD")
    if c.maximize:
        raise NotExpressible("optax has no maximize")
    if c.loss_scale_factor not in (None, 1.0):
        raise NotExpressible("optax has no loss_scale_factor")
    if c.clipnorm is not None:
        raise NotExpressible("optax has no per-tensor clip by L2 norm")
    if c.use_ema:
        raise NotExpressible("optax keeps no EMA of the parameters")
    _require_neutral("optax", rule, "bias_correction", True)

    prefix = []
    if c.global_clipnorm is not None:
        prefix.append(optax.clip_by_global_norm(c.global_clipnorm))
    if c.clipvalue is not None:
        prefix.append(optax.clip(c.clipvalue))

    # Weight decay: absent -> the aliases' own defaults (adamw 1e-4, lion 1e-3, none elsewhere).
    if not c.wd_given and optimizer in ("AdamW", "Lion"):
        wd, mode = {"AdamW": 1e-4, "Lion": 1e-3}[optimizer], "decoupled"
    else:
        wd, mode = (c.weight_decay if c.has_wd else 0.0), c.wd_mode
    decoupled = wd if (wd != 0 and mode == "decoupled") else 0.0
    if wd != 0 and mode == "l2":
        prefix.append(optax.add_decayed_weights(wd))

    hp: dict[str, Any] = {}

    def put(ours, theirs=None, conv=float):
        if ours in rule and rule[ours] is not None:
            hp[theirs or ours] = conv(rule[ours])

    # Each branch defines
    #   alias(lr):    the optax alias without decoupled decay,
    #   alias_wd(lr): the optax alias that has decoupled decay built in (adamw, nadamw, lion),
    #   core:         the alias's transforms before scale_by_learning_rate, for the decoupled
    #                 chain core -> add_decayed_weights -> scale_by_learning_rate (None: no such
    #                 chain, because something follows scale_by_learning_rate).
    alias_wd = None
    if optimizer == "SGD":
        _require_neutral("optax", rule, "dampening")
        momentum = float(rule.get("momentum") or 0.0)
        mom = momentum if momentum != 0 else None
        nesterov = bool(rule.get("nesterov", False)) and mom is not None

        def alias(lr):
            return optax.sgd(lr, momentum=mom, nesterov=nesterov)

        core = [optax.trace(decay=mom, nesterov=nesterov)] if mom is not None else []
    elif optimizer == "Adagrad":
        _require_neutral("optax", rule, "lr_decay")
        put("initial_accumulator_value")
        put("epsilon", "eps")

        def alias(lr):
            return optax.adagrad(lr, **hp)

        core = [optax.scale_by_rss(**hp)]
    elif optimizer == "RMSprop":
        put("rho", "decay")
        put("epsilon", "eps")
        centered = bool(rule.get("centered", False))
        momentum = float(rule.get("momentum") or 0.0)
        # optax is the one peer with a switch for where epsilon goes: our key drives it.
        if eps_in_sqrt is not None:
            hp["eps_in_sqrt"] = bool(eps_in_sqrt)

        def alias(lr):
            return optax.rmsprop(
                lr, centered=centered, momentum=momentum if momentum != 0 else None, **hp
            )

        if momentum != 0:
            core = None  # optax.rmsprop's trace comes after scale_by_learning_rate
        else:
            core = [(optax.scale_by_stddev if centered else optax.scale_by_rms)(**hp)]
    elif optimizer in ("Adam", "AdamW"):
        put("beta_1", "b1")
        put("beta_2", "b2")
        put("epsilon", "eps")
        amsgrad = bool(rule.get("amsgrad", False))

        def alias(lr):
            return (optax.amsgrad if amsgrad else optax.adam)(lr, **hp)

        core = [(optax.scale_by_amsgrad if amsgrad else optax.scale_by_adam)(**hp)]
        if not amsgrad:

            def alias_wd(lr):
                return optax.adamw(lr, weight_decay=decoupled, **hp)

    elif optimizer == "Nadam":
        if rule.get("momentum_decay") is not None:
            raise NotExpressible(
                "optax nadam keeps beta_1 constant (momentum_decay=None), "
                f"got momentum_decay={rule['momentum_decay']!r}"
            )
        put("beta_1", "b1")
        put("beta_2", "b2")
        put("epsilon", "eps")

        def alias(lr):
            return optax.nadam(lr, **hp)

        def alias_wd(lr):
            return optax.nadamw(lr, weight_decay=decoupled, **hp)

        core = [optax.scale_by_adam(nesterov=True, **hp)]
    elif optimizer == "Adamax":
        put("beta_1", "b1")
        put("beta_2", "b2")
        put("epsilon", "eps")

        def alias(lr):
            return optax.adamax(lr, **hp)

        core = [optax.scale_by_adamax(**hp)]
    elif optimizer == "Adadelta":
        put("rho")
        put("epsilon", "eps")

        def alias(lr):
            return optax.adadelta(lr, **hp)

        core = [optax.scale_by_adadelta(**hp)]
    elif optimizer == "Lion":
        put("beta_1", "b1")
        put("beta_2", "b2")

        def alias(lr):
            return optax.lion(lr, weight_decay=0.0, **hp)

        def alias_wd(lr):
            return optax.lion(lr, weight_decay=decoupled, **hp)

        core = [optax.scale_by_lion(**hp)]
    elif optimizer == "Muon":
        from optax import contrib

        if "adam_lr_ratio" in rule or "rms_rate" in rule:
            raise NotExpressible("optax muon has no adam_lr_ratio / rms_rate (consistent_rms)")
        put("momentum", "beta")
        put("epsilon", "eps")
        put("adam_beta_1", "adam_b1")
        put("adam_beta_2", "adam_b2")
        put("adam_weight_decay")
        put("nesterov", conv=bool)
        put("ns_steps", conv=int)
        if rule.get("shape_scaling") == "rms":
            hp["consistent_rms"] = 0.2
        muon_wd = decoupled

        def alias(lr):
            return contrib.muon(lr, weight_decay=muon_wd, **hp)

        alias_wd = alias
        core = None
        decoupled = 0.0  # inside the alias
    elif optimizer == "RAdam":
        put("beta_1", "b1")
        put("beta_2", "b2")
        put("epsilon", "eps")
        put("epsilon_root", "eps_root")
        put("threshold")
        nesterov = bool(rule.get("nesterov", False))

        def alias(lr):
            return optax.radam(lr, nesterov=nesterov, **hp)

        core = [optax.scale_by_radam(nesterov=nesterov, **hp)]
    elif optimizer == "Rprop":
        if decoupled:
            raise NotExpressible(
                "optax.rprop has no decoupled weight decay (its update is a step size, not a "
                "multiple of the learning rate)"
            )
        for key in ("eta_minus", "eta_plus", "min_step_size", "max_step_size"):
            put(key)

        def alias(lr):
            return optax.rprop(lr, **hp)

        core = None
    elif optimizer == "Lamb":
        if decoupled and rule.get("weight_decay_in_trust_ratio") is False:
            raise NotExpressible("optax.lamb decays inside the trust ratio, not before the step")
        if rule.get("nan_trust_ratio", "nan") != "nan":
            raise NotExpressible("optax's trust ratio of a NaN norm is NaN")
        put("beta_1", "b1")
        put("beta_2", "b2")
        put("epsilon", "eps")
        lamb_wd = decoupled

        def alias(lr):
            return optax.lamb(lr, weight_decay=lamb_wd, **hp)

        alias_wd = alias
        core = None
        decoupled = 0.0  # inside the alias
    elif optimizer == "ScheduleFreeAdamW":
        from optax import contrib

        _schedule_free_refusals("optax", rule, _OPTAX_SCHEDULE_FREE)
        put("beta_1", "b1")
        put("beta_2", "b2")
        put("epsilon", "eps")
        put("weight_lr_power")
        if rule.get("warmup_steps"):
            hp["warmup_steps"] = int(rule["warmup_steps"])
        sf_wd = decoupled

        def alias(lr):
            return contrib.schedule_free_adamw(lr, weight_decay=sf_wd, **hp)

        alias_wd = alias
        core = None
        decoupled = 0.0  # inside the alias
    elif optimizer == "Adafactor":
        if "epsilon_2" in rule:
            raise NotExpressible("optax.adafactor's parameter-scale floor is fixed at 1e-3")
        if rule.get("relative_step") is True:
            raise NotExpressible("optax.adafactor has no relative step (an absolute lr)")
        if "epsilon_1" in rule and rule["epsilon_1"] is None:
            raise NotExpressible("optax.adafactor's eps is a number (no dtype epsilon)")
        if "beta_2_decay" in rule:
            hp["decay_rate"] = -float(rule["beta_2_decay"])
        put("epsilon_1", "eps")
        put("min_dim_size_to_factor", conv=int)
        put("multiply_by_parameter_scale", conv=bool)
        put("factored", conv=bool)
        put("momentum")
        if "clip_threshold" in rule:
            clip = rule["clip_threshold"]
            hp["clipping_threshold"] = None if clip is None else float(clip)
        # weight_decay_rate: added after the learning rate (not multiplied by it)
        rate = decoupled if decoupled else None

        def alias(lr):
            return optax.adafactor(lr, weight_decay_rate=rate, **hp)

        alias_wd = alias
        core = None
        decoupled = 0.0  # inside the alias
    else:  # pragma: no cover
        raise AssertionError(optimizer)

    if not decoupled:
        body = alias
    elif alias_wd is not None:
        body = alias_wd
    elif core is None:
        raise NotExpressible(
            f"optax {optimizer} with momentum applies the learning rate inside its trace: "
            "no place for decoupled weight decay"
        )
    else:

        def body(lr):
            return optax.chain(
                *core, optax.add_decayed_weights(decoupled), optax.scale_by_learning_rate(lr)
            )

    def factory(learning_rate):
        return optax.chain(*prefix, body(learning_rate)) if prefix else body(learning_rate)

    return factory


def _run_optax(optimizer, kwargs, params0, grads, plan, dtype):
    import jax
    import jax.numpy as jnp
    import optax

    c, rule = _split_kwargs("optax", optimizer, kwargs)
    eps_in_sqrt = kwargs.get("epsilon_in_sqrt") if optimizer == "RMSprop" else None
    factory = _optax_factory(optimizer, c, rule, eps_in_sqrt)
    tx = optax.inject_hyperparams(factory)(learning_rate=float(plan.lr_for_call(0, c.k)))
    params = [jnp.asarray(np.array(p, dtype=dtype)) for p in params0]
    state = tx.init(params)

    @jax.jit
    def step(upd_in, state, params):
        updates, state = tx.update(upd_in, state, params)
        return optax.apply_updates(params, updates), state

    acc = None
    for call, gs in enumerate(grads):
        gs = [np.asarray(g, dtype=dtype) for g in gs]
        if c.k > 1:
            if (call + 1) % c.k != 0:
                acc = _accumulate(acc, gs)
                continue
            acc = acc or [np.zeros_like(g) for g in gs]
            upd_in = [(jnp.asarray(g) + jnp.asarray(a)) / c.k for g, a in zip(gs, acc, strict=True)]
            acc = None
        else:
            upd_in = [jnp.asarray(g) for g in gs]
        state.hyperparams["learning_rate"] = jnp.asarray(plan.lr_for_call(call, c.k), dtype=dtype)
        params, state = step(upd_in, state, params)
    return {"params": [np.array(p, dtype=dtype) for p in params], "ema": None}


# --------------------------------------------------------------------------------------------


_RUNNERS = {"torch": _run_torch, "keras": _run_keras, "optax": _run_optax}


def run_peer(
    peer: str,
    optimizer: str,
    kwargs: dict,
    params0: list[np.ndarray],
    grads: list[list[np.ndarray]],
    plan: LrPlan,
) -> dict:
    """Run ``peer``'s ``optimizer`` for ``len(grads)`` calls; see the module docstring.

    Returns ``{"params": [arrays after the last call], "ema": [arrays] or None}`` in the dtype of
    ``params0``. Raises :class:`NotExpressible` when the peer cannot express the configuration.
    """
    if peer not in _RUNNERS:
        raise ValueError(f"unknown peer {peer!r}; expected one of {PEERS}")
    dtype = _check_dtype(params0)
    for c, gs in enumerate(grads):
        if len(gs) != len(params0):
            raise ValueError(f"grads[{c}] has {len(gs)} tensors, params0 has {len(params0)}")
    return _RUNNERS[peer](optimizer, dict(kwargs), params0, grads, plan, dtype)
