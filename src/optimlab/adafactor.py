"""Adafactor in the Keras dialect (``optimlab.Adafactor``), with PyTorch's and optax's
conventions as options. The rule is :mod:`optimlab.rules.adafactor`, a tensor-level rule: it
runs on NumPy (means over whole axes), never elementwise, and its second moment of a matrix
is one row and one column of averages (``v_row``, ``v_col``), so that its state is
O(n + m) numbers for an n x m parameter where Adam keeps 2 n m.
"""

from __future__ import annotations

from typing import Any

from . import rules
from ._validation import MAX_COUNT, check_bool, check_float, check_int, check_optional_float
from .optimizer import (
    choice,
    non_negative,
    optional_non_negative,
    optional_positive,
)
from .optimizer import (
    preset_default as D,
)
from .rule_optimizer import RuleOptimizer

__all__ = ["Adafactor"]


def _non_positive(name: str, value: Any) -> float:
    """The exponent of the beta_2 schedule 1 - t^beta_2_decay: a float <= 0 (PyTorch refuses
    a positive one, with which beta_2 would fall below 0)."""
    return check_float(name, value, None, 0.0)


def _optional_momentum(name: str, value: Any) -> float | None:
    """None (no momentum, the default everywhere) or a float in [0, 1) (optax's
    ``momentum``)."""
    return check_optional_float(name, value, 0.0, 1.0, high_open=True)


def _dimension(name: str, value: Any) -> int:
    """A dimension size: an integer >= 0 (0 factors every axis, however short)."""
    return check_int(name, value, 0, MAX_COUNT)


class Adafactor(RuleOptimizer):
    """Adafactor (Shazeer & Stern 2018): RMSprop with a factored second moment, update
    clipping and a relative step size::

        beta_2 = 1 - t^beta_2_decay
        R = beta_2 * R + (1 - beta_2) * mean_cols(g^2 + epsilon_1)      (matrices: n numbers)
        C = beta_2 * C + (1 - beta_2) * mean_rows(g^2 + epsilon_1)      (m numbers)
        V = R C / mean(R)          (vectors and scalars: v, an EMA of g^2 + epsilon_1)
        U = g / sqrt(V);  U = U / max(1, RMS(U) / clip_threshold)
        p = p - min(lr, 1 / sqrt(t)) * max(epsilon_2, RMS(p)) * U

    (Keras 3's ``keras.optimizers.Adafactor``: its names and defaults, learning_rate=0.001,
    beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0,
    relative_step=True; a tensor of more than two dimensions is factored over its last two.)
    ``preset="torch"`` is torch.optim.Adafactor (lr=0.01, epsilon_1 a floor rather than an
    offset, by default the dtype's machine epsilon: ``epsilon_1_style="clamp"``; decoupled
    decay p = p * (1 - lr * wd) after the step size is taken). ``preset="optax"`` is
    optax.adafactor (an absolute learning rate, 1.0 for optax's None; the two largest axes
    factored, only when both have ``min_dim_size_to_factor`` = 128 entries; beta_2 computed in
    float32; optional ``momentum``; ``weight_decay`` as optax's ``weight_decay_rate``, not
    multiplied by the learning rate). Every difference is an option, see
    :mod:`optimlab.rules.adafactor` for each equation and where it comes from.

    Keras's own ``relative_step`` changes nothing (Keras 3.15 takes min(lr, 1/sqrt(t)) again
    unconditionally); here ``relative_step=False`` is the paper's absolute step, rho = lr.
    Keras also keeps a full-size copy of V for each factored variable (derived from R and C
    at every step, never read back); optimlab keeps only R and C, so its ``variables`` are
    Keras's without those copies.
    """

    rule = rules.adafactor
    keras_variable_groups = (("v_row", "v_col", "v"), ("m",))
    hyperparameters = {
        "beta_2_decay": _non_positive,
        "epsilon_1": optional_non_negative,
        "epsilon_2": non_negative,
        "clip_threshold": optional_positive,
        "relative_step": check_bool,
        "multiply_by_parameter_scale": check_bool,
        "epsilon_1_style": choice("add", "clamp"),
        "factored": check_bool,
        "factored_dims": choice("last_two", "two_largest"),
        "min_dim_size_to_factor": _dimension,
        "beta_2_dtype": choice(None, "float32"),
        "mean_dtype": choice(None, "float32"),
        "nan_in_max": choice("propagate", "ignore"),
        "momentum": _optional_momentum,
        "momentum_dtype": choice(None, "float32"),
        "weight_decay_style": choice("before_rms", "after_rms", "unscaled"),
    }
    structural = ("factored", "factored_dims", "min_dim_size_to_factor", "momentum")

    def __init__(
        self,
        learning_rate=D(0.001),
        beta_2_decay=D(-0.8),
        epsilon_1=D(1e-30),
        epsilon_2=D(1e-3),
        clip_threshold=D(1.0),
        relative_step=D(True),
        weight_decay=D(None),
        *,
        multiply_by_parameter_scale=D(True),
        epsilon_1_style=D("add"),
        factored=D(True),
        factored_dims=D("last_two"),
        min_dim_size_to_factor=D(0),
        beta_2_dtype=D(None),
        mean_dtype=D("float32"),
        nan_in_max=D("propagate"),
        momentum=D(None),
        momentum_dtype=D(None),
        weight_decay_style=D("before_rms"),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_2_decay=beta_2_decay,
            epsilon_1=epsilon_1,
            epsilon_2=epsilon_2,
            clip_threshold=clip_threshold,
            relative_step=relative_step,
            weight_decay=weight_decay,
            multiply_by_parameter_scale=multiply_by_parameter_scale,
            epsilon_1_style=epsilon_1_style,
            factored=factored,
            factored_dims=factored_dims,
            min_dim_size_to_factor=min_dim_size_to_factor,
            beta_2_dtype=beta_2_dtype,
            mean_dtype=mean_dtype,
            nan_in_max=nan_in_max,
            momentum=momentum,
            momentum_dtype=momentum_dtype,
            weight_decay_style=weight_decay_style,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _slot_enabled(self, slot: str, kind: str) -> bool:
        """The momentum buffer ``m`` exists only with a ``momentum``; which of ``v_row``,
        ``v_col`` and ``v`` a parameter has, its shape decides (``rule.slot_shape``)."""
        return kind == "required" or self._config["momentum"] is not None

    @staticmethod
    def _structure(config: dict, name: str) -> Any:
        """What of ``name`` decides the buffers: for ``momentum``, whether there is one
        (None or a number, 0 included: optax's ema(0) keeps its buffer)."""
        if name == "momentum":
            return config[name] is not None
        return config[name]
