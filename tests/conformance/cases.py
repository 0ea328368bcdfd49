"""The conformance grid: every optimizer x option x preset, against the peer the preset names.

A case runs 210 calls of seeded random gradients (each call's gradient scaled by a random
log-normal factor, so that clipping is sometimes active and sometimes not) on three parameters
of shapes (4, 3), (5,) and () through optimlab and through the peer, with the learning-rate
plan of :class:`peers.LrPlan`: a constant lr for 70 calls, a different constant for 70 more
(the momentum-convention test), then an exponential-decay schedule.

Which options each peer can express is listed here explicitly, so that no case is generated
that would have to be skipped: a pairing missing from the grid is a documented limit of the
peer, not a skipped test.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

CALLS = 210
SHAPES = ((4, 3), (5,), ())
DTYPES = ("float64", "float32")
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}
# How closely a stored peer answer must agree with the same peer run live on this machine. The
# file may have been written on another CPU: float64 answers agree to a few ulps everywhere,
# but a peer's float32 kernels differ in the last bits from one CPU to another (torch's
# RMSprop and Adadelta moved 1.2e-7 and 1.1e-6 between an AMD EPYC and an Intel AVX-512
# machine), so float32 is held to the conformance tolerance itself, never tighter.
REPRODUCTION_TOLERANCE = {"float64": TOLERANCE["float64"] / 100, "float32": TOLERANCE["float32"]}

# Where a peer's own arithmetic keeps it from the tolerance, measured, with the reason:
KNOWN_LIMITS = {
    # torch.optim.Muon runs Newton-Schulz in bfloat16 (8 significant bits). optimlab rounds
    # every operation as torch does (tests/test_muon.py: identical iterates on at least
    # 297 of 300 random matrices), but where a result falls within float32 rounding of a bfloat16
    # tie, torch's gemm (its own accumulation order) and the exact sum can round to
    # neighbouring bfloat16 values: one element then moves by 2^-8 of the update. Measured:
    # 14 of the 20 cases hold the usual tolerance (6 float64 ones to 1e-15, 8 float32 ones
    # within 6.5e-6); the others deviate by at most 1.1e-4.
    ("Muon", "torch"): {"float64": 3e-4, "float32": 3e-4},
    # Keras's ops.norm casts to its default float (float32) even for float64 weights, and
    # sums in XLA's order: optimlab takes the norm in float32 too (ns_norm_dtype), but its
    # last bit can differ, 6e-8 relative. Measured: at most 1.1e-8 over the 13 float64 cases.
    ("Muon", "keras"): {"float64": 2e-8, "float32": TOLERANCE["float32"]},
    # Keras's ops.mean computes in float32 for float64 tensors too (keras's result_type of
    # float64 and "float32" is float32), and Adafactor takes six means a step (RMS(p), RMS(U),
    # R, C, mean(R)). optimlab takes them in float32 as well (mean_dtype="float32": rounded
    # inputs, XLA's in-order sum of short axes, its multiplication by float32(1/n)), which
    # reproduces the vectors exactly, but XLA sums a whole (4, 3) or (2, 5, 3) tensor in an
    # order of its own: the last float32 bit of RMS(p) and RMS(U) differs now and then, 6e-8
    # relative. Measured: at most 7.1e-8 over the 12 float64 cases (1.3e-7 with float64 means).
    ("Adafactor", "keras"): {"float64": 2e-7, "float32": TOLERANCE["float32"]},
    # FTRL solves p = (clip(z, -l1, l1) - z) / quadratic from z, a running sum of g - sigma * p
    # terms of size 1 whose total is small: float32 rounds z by an absolute 1e-9 or so, which
    # a parameter that ends near 0 takes as a large relative error. Measured: the EMA case's
    # scalar ends at 7.4e-5 (the others at 0.06) and deviates by 1.27e-5 relative, 9e-10
    # absolute, whether the schedule is taken in double or in float32 as Keras does; the other
    # 15 float32 cases stay within 8.8e-6, the 16 float64 ones within 2.7e-15.
    ("Ftrl", "keras"): {"float64": TOLERANCE["float64"], "float32": 3e-5},
}


def tolerance(case) -> float:
    """The tolerance of ``case``: TOLERANCE, or its documented KNOWN_LIMITS."""
    return KNOWN_LIMITS.get((case.optimizer, case.peer), TOLERANCE)[case.dtype]


# (lr0, lr1) of the plan per optimizer
LEARNING_RATES = {
    "SGD": (0.05, 0.02),
    "Adagrad": (0.1, 0.05),
    "RMSprop": (0.01, 0.003),
    "Adam": (0.01, 0.003),
    "AdamW": (0.01, 0.003),
    "Nadam": (0.01, 0.003),
    "Adamax": (0.01, 0.003),
    "Adadelta": (1.0, 0.5),
    "Lion": (0.003, 0.001),
    "Muon": (0.02, 0.01),
    "RAdam": (0.01, 0.003),
    "Rprop": (0.01, 0.003),  # the initial step size: both peers ignore later learning rates
    "ASGD": (0.05, 0.02),  # reaches eta one update late (torch computes it after each step)
    "Lamb": (0.01, 0.003),
    # above 1/sqrt(t) from t = 12 and t = 101: Keras's and torch's relative step min(lr,
    # 1/sqrt(t)) takes both branches in each phase; optax's lr is absolute
    "Adafactor": (0.3, 0.1),
    "Ftrl": (0.1, 0.05),
    # a rise at the change: optax's lr_max (and with it the averaging weights) moves there
    "ScheduleFreeAdamW": (0.005, 0.02),
}

# Each optimizer's own options.
OWN_OPTIONS = {
    "SGD": [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.9, "dampening": 0.3},
    ],
    "Adagrad": [{}, {"initial_accumulator_value": 0.5, "epsilon": 1e-3}, {"lr_decay": 0.01}],
    "RMSprop": [
        {},
        {"momentum": 0.5},
        {"centered": True},
        {"centered": True, "momentum": 0.5},
        {"rho": 0.5, "epsilon": 1e-3},
    ],
    "Adam": [
        {},
        {"amsgrad": True},
        {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3},
        {"weight_decay": 0.05, "weight_decay_mode": "decoupled"},
    ],
    "AdamW": [{}, {"amsgrad": True}, {"weight_decay": 0.1}],
    "Nadam": [
        {},
        {"beta_1": 0.5, "epsilon": 1e-3},
        {"momentum_decay": 0.01},
        {"weight_decay": 0.05, "weight_decay_mode": "decoupled"},
    ],
    "Adamax": [{}, {"beta_1": 0.5, "epsilon": 1e-3}],
    "Adadelta": [{}, {"rho": 0.5, "epsilon": 1e-3}],
    "Lion": [{}, {"beta_1": 0.5, "beta_2": 0.9}],
    "Muon": [
        {},
        {"momentum": 0.9, "nesterov": False},
        {"ns_steps": 3},
        {"rms_rate": 0.1},
        {"shape_scaling": "rms"},
        {"adam_beta_1": 0.5, "adam_beta_2": 0.9, "epsilon": 1e-3, "adam_weight_decay": 0.1},
        {"adam_lr_ratio": 0.5},
    ],
    "RAdam": [
        {},
        {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3},
        {"weight_decay": 0.05, "weight_decay_mode": "decoupled"},
        {"nesterov": True},
        {"threshold": 8.0, "epsilon_root": 1e-6},
    ],
    "Rprop": [
        {},
        {"eta_minus": 0.3, "eta_plus": 1.5},
        # lr 0.01 > max_step_size: torch clips it at the first update, optax only once it moves
        {"min_step_size": 1e-4, "max_step_size": 0.005},
    ],
    # ASGD: the averaging starts at t = t0 + 3; t0 = 20 before the lr change at call 70, 100
    # between it and the schedule (from call 140), 150 within the schedule; the default 1e6
    # never averages (ax = p)
    "ASGD": [
        {},
        {"lambd": 0.05},
        {"alpha": 0.5, "t0": 20.0},
        {"t0": 100.0, "lambd": 0.01, "alpha": 1.0},
        {"t0": 150.5},
    ],
    "Lamb": [
        {},
        {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3},
        # L2 decay (optax: add_decayed_weights before the alias); its own decay then off
        {"weight_decay": 0.05, "weight_decay_mode": "l2", "weight_decay_in_trust_ratio": False},
    ],
    "Adafactor": [
        {},
        {"beta_2_decay": -0.5},
        {"epsilon_1": 1e-3},
        {"epsilon_2": 2.0},  # above RMS(p): the floor decides the step size
        {"clip_threshold": 2.0},
        # optax only (min_dim_size_to_factor=2: the small tensors factored too, over their
        # two largest axes)
        {"min_dim_size_to_factor": 2},
        {"clip_threshold": None, "min_dim_size_to_factor": 2},  # no clipping
        {"multiply_by_parameter_scale": False, "min_dim_size_to_factor": 2},
        {"momentum": 0.9, "min_dim_size_to_factor": 2},
        {"factored": False},
    ],
    "Ftrl": [
        {},
        {"learning_rate_power": 0.0},  # a fixed rate: n^0 = 1, the accumulator plays no part
        {"learning_rate_power": -0.3},  # a general power: ** on the reference engine
        {"initial_accumulator_value": 0.0},
        # an l1 that holds coordinates at exactly 0 (5 of the 18 at the end, the scalar too)
        {"l1_regularization_strength": 20.0},
        {"l2_regularization_strength": 0.5},
        {"l2_shrinkage_regularization_strength": 0.05},
        {"beta": 1.0},
        {  # Keras's own ftrl_test golden configuration
            "learning_rate_power": -0.2,
            "initial_accumulator_value": 0.4,
            "l1_regularization_strength": 0.05,
            "l2_regularization_strength": 0.15,
            "l2_shrinkage_regularization_strength": 0.01,
            "beta": 0.3,
        },
    ],
    "ScheduleFreeAdamW": [
        {},
        {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3},
        # still warming up at the learning-rate change (call 70); optax's runner holds the
        # learning rate in a float64 array (inject_hyperparams): "float32_fraction" there
        {"warmup_steps": 100},
        {"warmup_steps": 20, "weight_decay": 0.05},
        {"warmup_steps": 100, "warmup_dtype": "float32_fraction"},
        {"warmup_steps": 20, "weight_decay": 0.05, "warmup_dtype": "float32_fraction"},
        {"weight_lr_power": 0.0},  # Keras's uniform average (optax: lr_max^0 = 1)
        {"weight_lr_power": 1.0},  # optax only
    ],
}

#: the parameters of a case (torch.optim.Muon takes matrices only)
SHAPES_OF = {
    ("Muon", "torch"): ((4, 3), (3, 5), (6, 2)),
    ("Muon", "keras"): ((4, 3), (3, 5), (5,), ()),
    ("Muon", "optax"): ((4, 3), (3, 5), (5,), ()),
    # a 3-D tensor (Keras and torch factor its last two axes, optax its two largest where
    # min_dim_size_to_factor lets it: tests/test_adafactor.py runs optax's default of 128 live
    # on a (130, 128) matrix, too large to store here)
    ("Adafactor", "keras"): ((4, 3), (5,), (), (2, 5, 3)),
    ("Adafactor", "torch"): ((4, 3), (5,), (), (2, 5, 3)),
    ("Adafactor", "optax"): ((4, 3), (5,), (), (2, 5, 3)),
}

#: optimlab's Adafactor options that only optax.adafactor has
_OPTAX_ONLY_ADAFACTOR = {
    "multiply_by_parameter_scale",
    "factored",
    "min_dim_size_to_factor",
    "momentum",
}

# The base-class options, on every optimizer.
COMMON_OPTIONS = [
    {"weight_decay": 0.05},
    {"clipnorm": 1.0},
    {"global_clipnorm": 1.0},
    {"clipvalue": 0.3},
    {"use_ema": True, "ema_momentum": 0.9},
    {"gradient_accumulation_steps": 3},
    {"maximize": True},
    {"loss_scale_factor": 4.0},
]


def expressible(peer: str, optimizer: str, options: dict) -> bool:
    """Whether ``peer`` has the means to express ``options`` (the documented limits)."""
    keys = set(options)
    if optimizer == "Ftrl" and peer != "keras":
        return False  # neither torch.optim nor optax 0.2.8 has an FTRL
    if optimizer == "ScheduleFreeAdamW":
        if peer == "torch":  # torch.optim has none
            return False
        if peer == "keras" and (
            options.get("weight_lr_power", 0.0) != 0.0 or "warmup_dtype" in keys
        ):
            return False  # Keras's c_t is 1 / t, its warmup lr * min(t / W, 1)
        if peer == "optax" and options.get("warmup_steps"):
            return options.get("warmup_dtype") == "float32_fraction"
    if optimizer == "Adafactor" and peer in ("keras", "torch"):
        # neither has optax's switches; both always clip (torch's d >= 1) and take the
        # relative step
        if keys & _OPTAX_ONLY_ADAFACTOR or options.get("relative_step") is False:
            return False
        clip = options.get("clip_threshold", 1.0)
        if clip is None or (peer == "torch" and clip < 1.0):
            return False
    if peer == "keras":
        if optimizer == "Muon" and "shape_scaling" in keys:  # Keras: always "rms"
            return False
        if optimizer == "RAdam":  # Keras has no RAdam
            return False
        if optimizer in ("Rprop", "ASGD"):  # Keras has neither
            return False
        if optimizer == "Lamb" and (  # Keras: decay before the step, ratio 1 for NaN norms
            options.get("weight_decay_in_trust_ratio") or options.get("nan_trust_ratio") == "nan"
        ):
            return False
        if keys & {"dampening", "lr_decay", "momentum_decay", "maximize"}:
            return False
        if options.get("weight_decay_mode") == "l2":
            return False
        if optimizer == "Nadam" and options.get("weight_decay_mode") == "decoupled":
            return "weight_decay" in keys  # Keras's weight decay is always decoupled
        return True
    if peer == "torch":
        if optimizer in ("Lion", "Lamb") or "loss_scale_factor" in keys:
            return False
        if optimizer == "Rprop" and "weight_decay" in keys:  # torch's Rprop has none
            return False
        if optimizer == "Adafactor":  # decoupled decay only
            return options.get("weight_decay_mode", "decoupled") == "decoupled"
        if optimizer == "Muon":  # torch.optim.Muon: no maximize, no AdamW part
            return not keys & {
                "maximize",
                "adam_lr_ratio",
                "epsilon",
                "adam_weight_decay",
                "rms_rate",
            }
        if options.get("weight_decay_mode") == "decoupled" and optimizer not in (
            "Adam",
            "AdamW",
            "Nadam",
            "RAdam",
        ):
            return False
        if optimizer == "RAdam" and (
            options.get("nesterov", False)
            or options.get("epsilon_root", 0.0) != 0.0
            or options.get("threshold", 5.0) != 5.0
        ):
            return False  # torch.optim.RAdam has neither Nesterov, eps_root nor a threshold
        return True
    if peer == "optax":
        if optimizer == "ASGD":  # optax has no ASGD
            return False
        if optimizer == "Muon" and keys & {"adam_lr_ratio", "rms_rate"}:  # 0.2 fixed
            return False
        if optimizer == "Lamb" and options.get("nan_trust_ratio") == "one":
            return False
        if (
            optimizer == "Lamb"
            and options.get("weight_decay_in_trust_ratio") is False
            and options.get("weight_decay_mode") != "l2"
        ):
            return False  # optax.lamb decays inside the trust ratio only
        if optimizer == "Adafactor" and ("epsilon_2" in keys or options.get("relative_step")):
            return False  # the floor is fixed at 1e-3; the lr is absolute
        if keys & {
            "dampening",
            "lr_decay",
            "momentum_decay",
            "maximize",
            "loss_scale_factor",
            "clipnorm",
            "use_ema",
        }:
            return False
        if optimizer == "Rprop" and options.get("weight_decay_mode") == "decoupled":
            return False  # only chain(add_decayed_weights, rprop): L2
        return True
    raise ValueError(peer)


@dataclass(frozen=True)
class Case:
    peer: str
    optimizer: str
    options: dict = field(hash=False)
    dtype: str

    @property
    def id(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items()) or "defaults"
        return f"{self.peer}-{self.optimizer}-{opts}-{self.dtype}"


def all_cases() -> list[Case]:
    cases = []
    for peer, (optimizer, own), dtype in itertools.product(
        ("keras", "torch", "optax"), OWN_OPTIONS.items(), DTYPES
    ):
        for options in own + COMMON_OPTIONS:
            if expressible(peer, optimizer, options):
                cases.append(Case(peer, optimizer, dict(options), dtype))
    return cases


def make_problem(case: Case, seed: int = 0):
    """Initial parameters and the gradient of every call, seeded by the case."""
    rng = np.random.default_rng([seed, zlib.crc32(case.id.encode())])
    dtype = np.dtype(case.dtype)
    shapes = SHAPES_OF.get((case.optimizer, case.peer), SHAPES)
    params0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = []
    for _ in range(CALLS):
        # math.exp (the C library's), not np.exp: NumPy's AVX-512 exp differs from it in the
        # last bit for about 4% of arguments, which changed the float64 problems (and so the
        # digests of golden.json) from one CPU to another
        scale = math.exp(rng.standard_normal())
        grads.append([(scale * rng.standard_normal(s)).astype(dtype) for s in shapes])
    return [np.asarray(p) for p in params0], [[np.asarray(g) for g in gs] for gs in grads]


def reproduction_tolerance(case) -> float:
    """How closely a stored answer must agree with the same peer run live: the
    REPRODUCTION_TOLERANCE, or the case's KNOWN_LIMITS (torch's bfloat16 products may round
    ties differently on another CPU's kernels)."""
    if (case.optimizer, case.peer) in KNOWN_LIMITS:
        return tolerance(case)
    return REPRODUCTION_TOLERANCE[case.dtype]
