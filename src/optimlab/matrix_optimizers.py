"""Optimizers whose rule is not elementwise: it works on a whole parameter at once (matrix
products, factored moments, trust ratios). Same dialect as :mod:`optimlab.optimizers` (Keras
3's names and defaults, ``preset="torch"`` / ``"optax"`` for those peers' numerics); the rule
runs on NumPy and BLAS, and the elementwise parts of the pipeline (clipping, weight decay, the
EMA) are the runtime's as for every optimizer.
"""

from __future__ import annotations

from typing import Any

from . import rules
from ._validation import check_bool, check_float, check_int, show
from .optimizer import (
    choice,
    non_negative,
    optional_non_negative,
    optional_positive,
    unit_interval_open,
)
from .optimizer import (
    preset_default as D,
)
from .rule_optimizer import RuleOptimizer

__all__ = [
    "Muon",
    "Lamb",
]


def _finite(name: str, value: Any) -> float:
    """Any finite float (the Newton-Schulz coefficients)."""
    return check_float(name, value)


def _ns_steps(name: str, value: Any) -> int:
    """Newton-Schulz iterations: an integer in [1, 99] (torch refuses 100 and more)."""
    return check_int(name, value, 1, 99)


class Muon(RuleOptimizer):
    """Muon: momentum orthogonalised by Newton-Schulz for the matrices, AdamW for the rest::

        m = momentum * m + g;  u = g + momentum * m (Nesterov)
        p = p - lr * rms_rate * sqrt(max(rows, cols)) * NewtonSchulz(u)

    (Keras 3's ``keras.optimizers.Muon``: its names and defaults, learning_rate=0.001,
    momentum=0.95, weight_decay=0.004, rms_rate=0.2). Parameters that are not 2-D take
    Keras's AdamW step (adam_beta_1, adam_beta_2, epsilon, lr * adam_lr_ratio, decay
    adam_weight_decay). ``preset="torch"`` is torch.optim.Muon (an EMA momentum, the
    iteration in bfloat16, s = sqrt(max(1, rows / cols)), weight decay 0.1; non-matrices
    refused); ``preset="optax"`` is optax.contrib.muon (an EMA momentum with a bias-corrected
    Nesterov term, s = sqrt(max(1, cols / rows)), NAdamW for non-matrices, no weight decay).
    Each difference is an option: ``momentum_style``, ``ns_dtype``, ``ns_norm_dtype``
    (Keras takes the norm in float32 even for float64 weights), ``ns_epsilon`` (None: the
    same as ``epsilon``, as in optax),
    ``ns_epsilon_style``, ``shape_scaling``, ``non_matrix``; see :mod:`optimlab.rules.muon`.

    Keras chooses AdamW also for variables named like an embedding or matched by
    ``exclude_layers``; NumPy arrays have no names, so here the choice is by shape alone
    (choose by name with :class:`~optimlab.MultiOptimizer`: ``ol.MultiOptimizer(
    ol.OptimizerMap(ol.AdamW(), {".*/kernel": ol.Muon()}))``).
    """

    rule = rules.muon
    keras_variable_groups = (("m", "v"),)
    hyperparameters = {
        "adam_beta_1": unit_interval_open,
        "adam_beta_2": unit_interval_open,
        "adam_weight_decay": optional_non_negative,
        "epsilon": non_negative,
        "muon_a": _finite,
        "muon_b": _finite,
        "muon_c": _finite,
        "adam_lr_ratio": non_negative,
        "momentum": unit_interval_open,
        "ns_steps": _ns_steps,
        "nesterov": check_bool,
        "rms_rate": optional_positive,
        "momentum_style": choice("sum", "ema", "ema_corrected"),
        "ns_epsilon": optional_positive,
        "ns_epsilon_style": choice("add", "clamp"),
        "ns_dtype": choice(None, "bfloat16"),
        "ns_norm_dtype": choice(None, "float32"),
        "shape_scaling": choice("rms", "rows_over_cols", "cols_over_rows", "none"),
        "non_matrix": choice("adamw", "nadamw", "raise"),
    }
    structural = ("non_matrix",)

    def __init__(
        self,
        learning_rate=D(0.001),
        adam_beta_1=D(0.9),
        adam_beta_2=D(0.999),
        adam_weight_decay=D(0.004),
        epsilon=D(1e-7),
        weight_decay=D(0.004),
        *,
        muon_a=D(3.4445),
        muon_b=D(-4.7750),
        muon_c=D(2.0315),
        adam_lr_ratio=D(1.0),
        momentum=D(0.95),
        ns_steps=D(5),
        nesterov=D(True),
        rms_rate=D(0.2),
        momentum_style=D("sum"),
        ns_epsilon=D(1e-7),
        ns_epsilon_style=D("add"),
        ns_dtype=D(None),
        ns_norm_dtype=D("float32"),
        shape_scaling=D("rms"),
        non_matrix=D("adamw"),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            adam_beta_1=adam_beta_1,
            adam_beta_2=adam_beta_2,
            adam_weight_decay=adam_weight_decay,
            epsilon=epsilon,
            weight_decay=weight_decay,
            muon_a=muon_a,
            muon_b=muon_b,
            muon_c=muon_c,
            adam_lr_ratio=adam_lr_ratio,
            momentum=momentum,
            ns_steps=ns_steps,
            nesterov=nesterov,
            rms_rate=rms_rate,
            momentum_style=momentum_style,
            ns_epsilon=ns_epsilon,
            ns_epsilon_style=ns_epsilon_style,
            ns_dtype=ns_dtype,
            ns_norm_dtype=ns_norm_dtype,
            shape_scaling=shape_scaling,
            non_matrix=non_matrix,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _check_combinations(self, config: dict) -> None:
        super()._check_combinations(config)
        if config["weight_decay_mode"] != "decoupled":
            raise ValueError(
                "Muon's weight decay is decoupled (p = p - lr * wd * p) in every peer; "
                f"weight_decay_mode must be 'decoupled', got {config['weight_decay_mode']!r}"
            )

    def _slot_enabled(self, slot: str, kind: str) -> bool:
        return kind == "required" or self._config["non_matrix"] != "raise"

    def _rule_hyperparameters(self) -> dict:
        out = super()._rule_hyperparameters()
        if out["rms_rate"] is None:  # Keras's rms_rate=None: no shape factor
            out["shape_scaling"] = "none"
        return out

    def _check_parameter_shapes(self, shapes) -> None:
        """With ``non_matrix="raise"`` (torch) a parameter that is not 2-D is refused, as
        torch.optim.Muon refuses it, and nothing is built."""
        if self._config["non_matrix"] == "raise":
            for i, shape in enumerate(shapes):
                if len(shape) != 2:
                    raise ValueError(
                        f"Muon with non_matrix='raise' (torch.optim.Muon) takes only 2-D "
                        f"parameters; parameter {i} has shape {show(tuple(shape))}. Give "
                        "the others to another optimizer, or use non_matrix='adamw'"
                    )

    def _shape_weight_decay(self, shape, wd):
        """Matrices decay by ``weight_decay``, the others by ``adam_weight_decay`` (Keras's
        ``Muon._apply_weight_decay``); both at the unscaled learning rate."""
        if len(shape) != 2:
            return self._config["adam_weight_decay"] or None
        return wd

    def _item_options(self, p, lr: float):
        """The decay of :meth:`_shape_weight_decay` for a parameter not excluded."""
        lr_i, wd = super()._item_options(p, lr)
        if id(p) not in self._excluded:
            wd = self._shape_weight_decay(p.shape, wd)
        return lr_i, wd


class Lamb(RuleOptimizer):
    """Lamb (You et al. 2020, Algorithm 2): Adam's direction scaled by the trust ratio of
    each parameter, so that every parameter moves by lr times its own norm::

        m = beta_1 * m + (1 - beta_1) * g;  v = beta_2 * v + (1 - beta_2) * g^2
        r = (m / bc1) / (sqrt(v / bc2) + epsilon)
        p = p - lr * (||p|| / ||r||) * r          (trust ratio 1 where a norm is 0)

    (Keras 3's ``keras.optimizers.Lamb``: its names and defaults, learning_rate=0.001,
    beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None). Keras's weight decay is its
    base class's, p = p - lr * wd * p *before* the step, so the trust ratio sees the decayed
    weights. ``preset="optax"`` is ``optax.lamb`` (eps 1e-6, the paper's decay inside the
    trust ratio: r = r + wd * p before the norms, ``weight_decay_in_trust_ratio=True``; a
    NaN norm gives a NaN ratio, ``nan_trust_ratio="nan"``, where Keras takes 1).
    ``preset="torch"``: torch.optim has no Lamb, and the third-party ones disagree (gradient
    pre-normalisation, bias correction or not, a clamped ||p||); the preset is the paper's
    Algorithm 2 as optax writes it (eps 1e-6, the decay inside the trust ratio) with torch's
    conventions (a step count per parameter, torch's clipping, no decay by default).

    ``exclude_from_weight_decay`` is optax's ``mask``. See :mod:`optimlab.rules.lamb`.
    """

    rule = rules.lamb
    keras_variable_groups = (("m", "v"),)
    hyperparameters = {
        "beta_1": unit_interval_open,
        "beta_2": unit_interval_open,
        "epsilon": non_negative,
        "weight_decay_in_trust_ratio": check_bool,
        "nan_trust_ratio": choice("one", "nan"),
    }

    def __init__(
        self,
        learning_rate=D(0.001),
        beta_1=D(0.9),
        beta_2=D(0.999),
        epsilon=D(1e-7),
        weight_decay=D(None),
        *,
        weight_decay_in_trust_ratio=D(False),
        nan_trust_ratio=D("one"),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            weight_decay=weight_decay,
            weight_decay_in_trust_ratio=weight_decay_in_trust_ratio,
            nan_trust_ratio=nan_trust_ratio,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _check_combinations(self, config: dict) -> None:
        super()._check_combinations(config)
        if config["weight_decay_in_trust_ratio"] and config["weight_decay_mode"] != "decoupled":
            raise ValueError(
                "weight_decay_mode must be 'decoupled' with weight_decay_in_trust_ratio=True "
                "(the decay is added to Lamb's direction, not to the gradient), got "
                f"{config['weight_decay_mode']!r}; pass weight_decay_in_trust_ratio=False "
                "for L2 decay (g = g + wd * p)"
            )

    def _rule_takes_decay(self) -> bool:
        """Inside the trust ratio the decay is the rule's: the runtime hands it each
        parameter's decay (None if excluded) instead of decaying p first."""
        return self._config["weight_decay_in_trust_ratio"]
