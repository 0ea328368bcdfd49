"""Schedule-Free AdamW in the Keras dialect (``optimlab.ScheduleFreeAdamW``), with optax's
and the authors' conventions as options. The rule is :mod:`optimlab.rules.schedule_free_adamw`
(elementwise: the fused engine runs it in one pass; its per-step weights travel as scalars and
its running weight sum as step state, as Nadam's momentum product does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import rules
from ._validation import MAX_COUNT, check_bool, check_float, check_int, show
from .optimizer import choice, non_negative, unit_interval_open
from .optimizer import preset_default as D
from .optimizer_checks import _as_list
from .rule_optimizer import RuleOptimizer

__all__ = ["ScheduleFreeAdamW"]


def _warmup_steps(name: str, value: Any) -> int:
    """The length of the linear warmup: an integer >= 0 (0: none; optax's None)."""
    if value is None:
        return 0
    return check_int(name, value, 0, MAX_COUNT)


def _weight_lr_power(name: str, value: Any) -> float:
    """The exponent of lr_max in the averaging weights: a finite float >= 0."""
    return check_float(name, value, 0.0)


_weight_decay_style = choice("before_step", "in_z_step")
_weight_sum_dtype = choice("parameter", "float64")
_warmup_dtype = choice(None, "float32", "float32_fraction")


class ScheduleFreeAdamW(RuleOptimizer):
    """Schedule-Free AdamW (Defazio et al. 2024, "The Road Less Scheduled"): AdamW without a
    schedule and without momentum; the parameter is y, where gradients are taken::

        y = (1 - beta_1) z + beta_1 x
        v = beta_2 v + (1 - beta_2) g^2
        z = z - lr_t g / (sqrt(v / bc2) + epsilon)        lr_t = lr * min(t / warmup_steps, 1)
        x = (1 - c_t) x + c_t z                           c_t = 1 / t  (Keras)

    (Keras 3.15's ``keras.optimizers.ScheduleFreeAdamW``: learning_rate=0.0025, beta_1=0.9,
    beta_2=0.999, epsilon=1e-8, warmup_steps=0; weight decay as Keras's base class, y = y - lr
    * wd * y before the step.) The state is z and v (Keras's ``momentum`` and ``velocity``;
    z starts as a copy of the parameter) and the step state lr_max, weight_sum; x is
    recovered from y and z when needed: :meth:`eval_params` gives it, :meth:`swap_to_eval` and
    :meth:`swap_to_train` put it into the parameters and back (the authors' ``eval()`` and
    ``train()``).

    ``preset="optax"`` is ``optax.contrib.schedule_free_adamw``: the averaging weight
    c_t = lr_max^2 / sum of lr_max^2 (``weight_lr_power=2.0``), the warmup of its z step
    evaluated at t - 1 (``warmup_from_zero=True``: its first z step is 0) in float32
    (``warmup_dtype="float32"``, for its Python-float learning rates; "float32_fraction" for
    one held in a float64 array by ``inject_hyperparams``), the weight decay
    (0 by default) at y inside the z step (``weight_decay_style="in_z_step"``).
    ``preset="torch"``: torch.optim has no Schedule-Free AdamW; the preset is the authors'
    ``schedulefree.AdamWScheduleFree`` (facebookresearch/schedule_free as of its commit
    0083572, read, not run against: no conformance cases): weight_lr_power 2,
    the decay in the z step, the epsilon-hat form (lr * sqrt(bc2), sqrt(v) + epsilon, also in
    lr_max) and its weights in double precision; torch's per-parameter step counting.

    beta_1 = 0 is y = z: AdamW with beta_1 = 0 (the average x is then not recoverable and
    :meth:`eval_params` refuses); Keras and optax divide by beta_1 there and give NaN. See
    :mod:`optimlab.rules.schedule_free_adamw` for each option and where it comes from.
    """

    rule = rules.schedule_free_adamw
    keras_variable_groups = (("z", "v"),)
    hyperparameters = {
        "beta_1": unit_interval_open,
        "beta_2": unit_interval_open,
        "epsilon": non_negative,
        "warmup_steps": _warmup_steps,
        "warmup_from_zero": check_bool,
        "weight_lr_power": _weight_lr_power,
        "weight_decay_style": _weight_decay_style,
        "warmup_dtype": _warmup_dtype,
        "weight_sum_dtype": _weight_sum_dtype,
        "epsilon_style": choice("hat", "paper"),
    }

    def __init__(
        self,
        learning_rate=D(0.0025),
        beta_1=D(0.9),
        beta_2=D(0.999),
        epsilon=D(1e-8),
        warmup_steps=D(0),
        weight_decay=D(None),
        *,
        warmup_from_zero=D(False),
        weight_lr_power=D(0.0),
        weight_decay_style=D("before_step"),
        warmup_dtype=D(None),
        weight_sum_dtype=D("parameter"),
        epsilon_style=D("paper"),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            warmup_steps=warmup_steps,
            weight_decay=weight_decay,
            warmup_from_zero=warmup_from_zero,
            weight_lr_power=weight_lr_power,
            weight_decay_style=weight_decay_style,
            warmup_dtype=warmup_dtype,
            weight_sum_dtype=weight_sum_dtype,
            epsilon_style=epsilon_style,
            name=name,
            preset=preset,
            **kwargs,
        )

    _evaluating = False

    # -- the runtime's hooks --------------------------------------------------------------

    def _dtype_hyperparameters(self, narrowest) -> dict:
        """weight_sum_dtype="parameter": the sums in the narrowest parameter dtype (None, in
        double precision, for float64 or before the build); "float64": None."""
        narrow = narrowest if self._config["weight_sum_dtype"] == "parameter" else None
        return {"weight_sum_dtype": None if narrow is None or narrow == np.float64 else narrow}

    def _step(self, pairs, trusted=None, finite=False) -> None:
        self._refuse_while_evaluating()
        super()._step(pairs, trusted=trusted, finite=finite)

    def step(self, params) -> None:
        self._refuse_while_evaluating()
        super().step(params)

    def _refuse_while_evaluating(self) -> None:
        if self._evaluating:
            raise ValueError(
                f"{self.name} holds the evaluation parameters x (swap_to_eval); call "
                "swap_to_train() before the next update; nothing was changed"
            )

    # -- the evaluation parameters --------------------------------------------------------

    @property
    def evaluating(self) -> bool:
        """Whether the parameters hold x (after :meth:`swap_to_eval`) rather than y."""
        return self._evaluating

    def _check_recoverable(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"{what}: {self.name} is not built yet (no z to recover x from)")
        if self._config["beta_1"] == 0.0:
            raise ValueError(
                f"{what}: with beta_1=0.0 the parameter is z itself and x, the average, is not "
                "kept (x = (y - (1 - beta_1) z) / beta_1 needs beta_1 > 0)"
            )

    def eval_params(self, params=None) -> list[np.ndarray]:
        """The evaluation parameters x = (y - (1 - beta_1) z) / beta_1 of the tracked
        parameters (or of ``params``, a subset of them), as new arrays: optax's
        ``schedule_free_eval_params(state, params)``. With ``swap_to_eval`` done, the
        parameters already hold x and these are copies of them."""
        self._check_recoverable("eval_params")
        targets = self._targets("eval_params", params)
        if self._evaluating:
            return [np.array(p) for p in targets]
        beta_1 = self._config["beta_1"]
        out = []
        for p in targets:
            z = self._slots[self._index[id(p)]][0]
            out.append(np.asarray(rules.schedule_free_adamw.eval_params(p, z, beta_1), p.dtype))
        return out

    def swap_to_eval(self) -> None:
        """Write x into every tracked parameter, in place (the authors' ``optimizer.eval()``);
        updates are refused until :meth:`swap_to_train`."""
        self._check_recoverable("swap_to_eval")
        if self._evaluating:
            raise ValueError(f"{self.name} already holds the evaluation parameters")
        values = self.eval_params()
        for p, x in zip(self._params, values, strict=True):
            p[...] = x
        self._evaluating = True

    def swap_to_train(self) -> None:
        """Write y = (1 - beta_1) z + beta_1 x back into every parameter (the authors'
        ``optimizer.train()``): y again to rounding (a few units in the last place)."""
        if not self._evaluating:
            raise ValueError(f"{self.name} already holds the training parameters y")
        beta_1 = self._config["beta_1"]
        for p, slots in zip(self._params, self._slots, strict=True):
            p[...] = rules.schedule_free_adamw.train_params(p, slots[0], beta_1)
        self._evaluating = False

    def _targets(self, what: str, params) -> list[np.ndarray]:
        if params is None:
            return list(self._params)
        targets = _as_list("params", params, arrays=True)
        for k, p in enumerate(targets):
            if id(p) not in self._index:
                raise ValueError(
                    f"{what} got parameter {k} ({show(p)}), which this optimizer does not track"
                )
        return targets

    def _reset_state(self) -> None:
        super()._reset_state()
        self._evaluating = False
