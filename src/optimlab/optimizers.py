"""The optimizers of the lecture in the Keras dialect: Keras 3's keyword names and defaults,
``apply_gradients(zip(grads, params))`` updating float32/float64 NumPy arrays in place.

Each class is one rule of :mod:`optimlab.rules` plus its hyperparameters; the runtime
(:class:`optimlab.optimizer.Optimizer`) does the rest. ``preset="torch"`` or ``"optax"``
switches defaults *and* formulas to that library's (:mod:`optimlab.presets`).
"""

from __future__ import annotations

from typing import Any

from . import rules
from ._validation import check_bool, check_float, check_optional_float, show
from .adafactor import Adafactor
from .matrix_optimizers import Lamb, Muon
from .optimizer import (
    Optimizer,
    _as_list,
    choice,
    non_negative,
    unit_interval_closed,
    unit_interval_open,
)
from .optimizer import (
    preset_default as D,
)
from .rule_optimizer import RuleOptimizer as _RuleOptimizer
from .schedule_free import ScheduleFreeAdamW


def _momentum_style(name: str, value: Any) -> str:
    return choice("lr_inside", "lr_outside")(name, value)


class SGD(_RuleOptimizer):
    """Gradient descent, with momentum or Nesterov momentum (the lecture's Keras code)::

        SGD(learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD")

    (without ``name=``, Keras 3's default name: ``"sgd"``, then ``"sgd_1"``, ...). Plain
    ``p = p - lr * g``; momentum ``v = momentum * v - lr * g; p = p + v``; Nesterov
    ``p = p + momentum * v - lr * g`` (the look-ahead folded into the step). Nesterov with
    momentum 0 is plain SGD with ``preset="keras"`` and ``"optax"`` (as in Keras and
    optax.sgd); ``preset="torch"`` refuses it as torch.optim.SGD does.
    ``momentum_style="lr_outside"`` (preset torch/optax) keeps lr out of the buffer:
    ``b = momentum * b + (1 - dampening) * g; p = p - lr * b``. See :mod:`optimlab.rules.sgd`.
    """

    rule = rules.sgd
    hyperparameters = {
        "momentum": unit_interval_open,
        "nesterov": check_bool,
        "dampening": unit_interval_closed,
        "momentum_style": _momentum_style,
    }
    structural = ("momentum",)

    def __init__(
        self,
        learning_rate=D(0.01),
        momentum=D(0.0),
        nesterov=D(False),
        name=None,
        *,
        dampening=D(0.0),
        momentum_style=D("lr_inside"),
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            dampening=dampening,
            momentum_style=momentum_style,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _check_combinations(self, config: dict) -> None:
        super()._check_combinations(config)
        if not config["nesterov"]:
            return
        if self._preset == "torch" and (config["momentum"] == 0.0 or config["dampening"] != 0.0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening (torch.optim.SGD): "
                f"nesterov=True needs momentum > 0 and dampening=0, got momentum="
                f"{config['momentum']!r}, dampening={config['dampening']!r}"
            )
        if config["dampening"] != 0.0:
            raise ValueError(
                f"nesterov=True requires dampening=0, got dampening={config['dampening']!r}"
            )

    def _slot_enabled(self, slot: str, kind: str) -> bool:
        return self._config["momentum"] > 0.0


class Adagrad(_RuleOptimizer):
    """Adagrad: ``G = G + g^2; p = p - lr * g / sqrt(G + epsilon)``, a per-parameter learning
    rate that favours rarely updated (sparse) features. See :mod:`optimlab.rules.adagrad`."""

    rule = rules.adagrad
    hyperparameters = {
        "initial_accumulator_value": non_negative,
        "epsilon": non_negative,
        "lr_decay": non_negative,
        "epsilon_in_sqrt": check_bool,
    }

    def __init__(
        self,
        learning_rate=D(0.001),
        initial_accumulator_value=D(0.1),
        epsilon=D(1e-7),
        *,
        lr_decay=D(0.0),
        epsilon_in_sqrt=D(True),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            initial_accumulator_value=initial_accumulator_value,
            epsilon=epsilon,
            lr_decay=lr_decay,
            epsilon_in_sqrt=epsilon_in_sqrt,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _slot_initial_value(self, slot: str) -> float:
        return self._config["initial_accumulator_value"]


class RMSprop(_RuleOptimizer):
    """RMSprop: ``v = rho * v + (1 - rho) * g^2; p = p - lr * g / sqrt(v + epsilon)``, with
    optional momentum and centering. See :mod:`optimlab.rules.rmsprop`."""

    rule = rules.rmsprop
    keras_variable_groups = (("velocity",), ("momentum",), ("average_gradient",))
    hyperparameters = {
        "rho": unit_interval_open,
        "momentum": unit_interval_open,
        "epsilon": non_negative,
        "centered": check_bool,
        "epsilon_in_sqrt": check_bool,
        "momentum_style": _momentum_style,
    }
    structural = ("momentum", "centered")

    def __init__(
        self,
        learning_rate=D(0.001),
        rho=D(0.9),
        momentum=D(0.0),
        epsilon=D(1e-7),
        centered=D(False),
        *,
        epsilon_in_sqrt=D(True),
        momentum_style=D("lr_inside"),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            rho=rho,
            momentum=momentum,
            epsilon=epsilon,
            centered=centered,
            epsilon_in_sqrt=epsilon_in_sqrt,
            momentum_style=momentum_style,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _slot_enabled(self, slot: str, kind: str) -> bool:
        if slot == "average_gradient":
            return self._config["centered"]
        if slot == "momentum":
            return self._config["momentum"] > 0.0
        return True


class Adam(_RuleOptimizer):
    """Adam with bias correction: ``m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
    p = p - lr * m_hat / (sqrt(v_hat) + epsilon)``; AMSGrad and the epsilon placement of each
    peer as options. See :mod:`optimlab.rules.adam`."""

    rule = rules.adam
    keras_variable_groups = (("m", "v"), ("v_max",))
    hyperparameters = {
        "beta_1": unit_interval_open,
        "beta_2": unit_interval_open,
        "epsilon": non_negative,
        "amsgrad": check_bool,
        "bias_correction": check_bool,
        "epsilon_style": choice("hat", "paper"),
        "amsgrad_max": choice("raw", "corrected"),
    }
    structural = ("amsgrad",)

    def __init__(
        self,
        learning_rate=D(0.001),
        beta_1=D(0.9),
        beta_2=D(0.999),
        epsilon=D(1e-7),
        amsgrad=D(False),
        *,
        bias_correction=D(True),
        epsilon_style=D("hat"),
        amsgrad_max=D("raw"),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            bias_correction=bias_correction,
            epsilon_style=epsilon_style,
            amsgrad_max=amsgrad_max,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _slot_enabled(self, slot: str, kind: str) -> bool:
        return kind == "required" or self._config["amsgrad"]


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019):
    ``p = p - lr * wd * p`` before the Adam step. Defaults: wd 0.004 (Keras), 0.01 (PyTorch),
    1e-4 (optax)."""

    def __init__(
        self,
        learning_rate=D(0.001),
        weight_decay=D(0.004),
        beta_1=D(0.9),
        beta_2=D(0.999),
        epsilon=D(1e-7),
        amsgrad=D(False),
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            **kwargs,
        )

    def _check_combinations(self, config: dict) -> None:
        wd = config["weight_decay"]
        if wd is None:
            raise ValueError("weight_decay must be a float >= 0 for AdamW, got None")
        if config["weight_decay_mode"] != "decoupled":
            raise ValueError(
                "AdamW applies decoupled weight decay, got weight_decay_mode='l2'; use "
                "Adam(weight_decay=..., weight_decay_mode='l2') for L2 regularization"
            )
        super()._check_combinations(config)
        # AdamW refuses None, so its 0 stays 0 (not None, the others' "off"): get_config,
        # from_config, load_state_dict and later assignments must accept what it accepted.
        config["weight_decay"] = wd


def _unit_interval_left_open(name: str, value: Any) -> float:
    """A float in (0, 1]."""
    return check_float(name, value, 0.0, 1.0, low_open=True)


def _momentum_decay(name: str, value: Any) -> float | None:
    return check_optional_float(name, value, 0.0)


class Nadam(_RuleOptimizer):
    """Nadam: Adam with Nesterov momentum and a momentum schedule
    ``mu_t = beta_1 * (1 - 0.5 * 0.96^(t * momentum_decay))`` (Keras: momentum_decay=1,
    PyTorch: 0.004, optax: None = constant beta_1). See :mod:`optimlab.rules.nadam`."""

    rule = rules.nadam
    keras_variable_groups = (("m", "v"),)
    hyperparameters = {
        "beta_1": unit_interval_open,
        "beta_2": unit_interval_open,
        "epsilon": non_negative,
        "momentum_decay": _momentum_decay,
    }

    def __init__(
        self,
        learning_rate=D(0.001),
        beta_1=D(0.9),
        beta_2=D(0.999),
        epsilon=D(1e-7),
        *,
        momentum_decay=D(1.0),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            momentum_decay=momentum_decay,
            name=name,
            preset=preset,
            **kwargs,
        )


class Adamax(_RuleOptimizer):
    """Adamax: Adam with the infinity norm, ``u = max(beta_2 * u, |g|)``. See
    :mod:`optimlab.rules.adamax`."""

    rule = rules.adamax
    keras_variable_groups = (("m", "u"),)
    hyperparameters = {
        "beta_1": unit_interval_open,
        "beta_2": unit_interval_open,
        "epsilon": non_negative,
        "epsilon_in_max": check_bool,
    }

    def __init__(
        self,
        learning_rate=D(0.001),
        beta_1=D(0.9),
        beta_2=D(0.999),
        epsilon=D(1e-7),
        *,
        epsilon_in_max=D(False),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            epsilon_in_max=epsilon_in_max,
            name=name,
            preset=preset,
            **kwargs,
        )


class Adadelta(_RuleOptimizer):
    """Adadelta: ``delta = sqrt(a + eps) / sqrt(v + eps) * g``, an update in the units of the
    parameter. See :mod:`optimlab.rules.adadelta`."""

    rule = rules.adadelta
    keras_variable_groups = (("accumulated_grad", "accumulated_delta"),)
    hyperparameters = {"rho": unit_interval_open, "epsilon": non_negative}

    def __init__(
        self,
        learning_rate=D(0.001),
        rho=D(0.95),
        epsilon=D(1e-7),
        *,
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            rho=rho,
            epsilon=epsilon,
            name=name,
            preset=preset,
            **kwargs,
        )


class Lion(_RuleOptimizer):
    """Lion: ``p = p - lr * sign(beta_1 * m + (1 - beta_1) * g); m = beta_2 * m +
    (1 - beta_2) * g``. See :mod:`optimlab.rules.lion`.

    ``beta_1`` in (0, 1] with ``preset="keras"`` (Keras refuses 0, with which Lion is SignSGD),
    in [0, 1] with ``"torch"`` and ``"optax"`` (optax.lion takes 0)."""

    rule = rules.lion
    hyperparameters = {"beta_1": unit_interval_closed, "beta_2": unit_interval_open}
    preset_hyperparameters = {"keras": {"beta_1": _unit_interval_left_open}}

    def __init__(
        self,
        learning_rate=D(0.001),
        beta_1=D(0.9),
        beta_2=D(0.99),
        *,
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            name=name,
            preset=preset,
            **kwargs,
        )


def _rectification_threshold(name: str, value: Any) -> float:
    """RAdam's threshold on rho_t: a float >= 4 (below, the rectification term would be the
    root of a negative number for rho_t in (2, 4))."""
    return check_float(name, value, 4.0)


class RAdam(_RuleOptimizer):
    """RAdam (Liu et al. 2020): Adam with its adaptive learning rate rectified::

        m = beta_1 * m + (1 - beta_1) * g;   v = beta_2 * v + (1 - beta_2) * g^2
        rho_inf = 2 / (1 - beta_2) - 1;      rho_t = rho_inf - 2 t beta_2^t / bc2
        rho_t > threshold:   r = sqrt((rho_t - 4)(rho_t - 2) rho_inf /
                                      ((rho_inf - 4)(rho_inf - 2) rho_t))
                             p = p - lr * r * sqrt(bc2) / bc1 * m / (sqrt(v) + epsilon)
        else:                p = p - lr / bc1 * m            (momentum SGD, bias-corrected)

    ``preset="torch"`` is ``torch.optim.RAdam`` (the form above, ``rho_t > 5``, L2 weight
    decay, ``weight_decay_mode="decoupled"`` for its ``decoupled_weight_decay=True``);
    ``preset="optax"`` is ``optax.radam``: epsilon outside the root of the bias-corrected
    v (``epsilon_style="paper"``: p = p - lr * r / bc1 * m / (sqrt(v / bc2 + epsilon_root) +
    epsilon)), rectified when ``rho_t >= threshold`` (``threshold_inclusive=True``), with its
    ``eps_root`` (``epsilon_root``) and ``nesterov`` (the first moment looked ahead, as in
    optax's Nadam). See :mod:`optimlab.rules.radam`.

    Keras has no RAdam. ``preset="keras"`` (the default) is PyTorch's rule with Keras's names
    and conventions: lr 0.001, betas 0.9 and 0.999, threshold 5 (torch's, the authors', optax's
    default) and epsilon 1e-7 rather than torch's 1e-8: Keras gives every optimizer that has
    an epsilon its fuzz factor ``keras.config.epsilon()`` = 1e-7, Adam included, in this same
    epsilon-hat form (epsilon added to sqrt(v)), so ``RAdam()`` and ``Adam()`` take the same
    epsilon, as they do in Keras's family; decoupled weight decay, the bias-correction powers
    in the variables' dtype and global step counting, as every Keras optimizer.
    """

    rule = rules.radam
    keras_variable_groups = (("m", "v"),)
    hyperparameters = {
        "beta_1": unit_interval_open,
        "beta_2": unit_interval_open,
        "epsilon": non_negative,
        "epsilon_root": non_negative,
        "threshold": _rectification_threshold,
        "threshold_inclusive": check_bool,
        "nesterov": check_bool,
        "epsilon_style": choice("hat", "paper"),
    }

    def __init__(
        self,
        learning_rate=D(0.001),
        beta_1=D(0.9),
        beta_2=D(0.999),
        epsilon=D(1e-7),
        *,
        epsilon_root=D(0.0),
        threshold=D(5.0),
        threshold_inclusive=D(False),
        nesterov=D(False),
        epsilon_style=D("hat"),
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            epsilon_root=epsilon_root,
            threshold=threshold,
            threshold_inclusive=threshold_inclusive,
            nesterov=nesterov,
            epsilon_style=epsilon_style,
            name=name,
            preset=preset,
            **kwargs,
        )


def _eta_minus(name: str, value: Any) -> float:
    """A shrink factor: a float in (0, 1)."""
    return check_float(name, value, 0.0, 1.0, low_open=True, high_open=True)


def _eta_plus(name: str, value: Any) -> float:
    """A growth factor: a float > 1."""
    return check_float(name, value, 1.0, low_open=True)


def _positive(name: str, value: Any) -> float:
    """A float > 0."""
    return check_float(name, value, 0.0, low_open=True)


def _compare_with(name: str, value: Any) -> str:
    return choice("gradient", "update")(name, value)


class Rprop(_RuleOptimizer):
    """Rprop (Riedmiller & Braun 1993), resilient backpropagation: a step size per coordinate
    that grows by ``eta_plus`` while the gradient keeps its sign and shrinks by ``eta_minus``
    when it flips; the parameter moves by the sign of the gradient times that step::

        Rprop(learning_rate=0.01, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6,
              max_step_size=50.0, name=None, *, clamp_every_step=True,
              compare_with="gradient", delayed_update=False, preset="keras")

        s = g * prev;  step *= eta_plus where s > 0, eta_minus where s < 0
        step = clip(step, min_step_size, max_step_size);  g = 0 where s < 0
        p = p - sign(g) * step;  prev = g

    ``learning_rate`` is the initial step size only: a parameter's first update starts its
    step sizes there, and later changes of the learning rate or a schedule's later values do
    not move them (as in torch.optim.Rprop, which reads ``lr`` when it creates a parameter's
    state, and optax.rprop, which reads it in ``init``). Rprop uses the sign of the gradient
    only: it is a full-batch method (noisy minibatch gradients flip signs at random, which
    shrinks the step sizes towards ``min_step_size``).

    Keras has no Rprop: ``preset="keras"`` takes PyTorch's numbers and formulas under
    optax's names (``eta_minus``, ``eta_plus``, ``min_step_size``, ``max_step_size``) and
    Keras's decoupled weight decay. ``preset="torch"`` is torch.optim.Rprop (``etas=(eta_minus,
    eta_plus)``, ``step_sizes=(min_step_size, max_step_size)``; it has no weight decay, so
    ``weight_decay`` is optimlab's L2 there). ``preset="optax"`` is optax.rprop (0.2.8): no
    default learning rate; ``clamp_every_step=False`` (a step size is clipped only where it
    changes, so the first update uses the learning rate as given); ``compare_with="update"``
    (``prev`` holds the previous update, optax's ``prev_updates``); ``delayed_update=True``
    (optax applies the update computed at the previous step, so its first update moves nothing:
    a bug of optax 0.2.8 that the preset reproduces; see :mod:`optimlab.rules.rprop`).
    Ranges: 0 < eta_minus < 1 < eta_plus, 0 < min_step_size <= max_step_size.
    """

    rule = rules.rprop
    hyperparameters = {
        "eta_minus": _eta_minus,
        "eta_plus": _eta_plus,
        "min_step_size": _positive,
        "max_step_size": _positive,
        "clamp_every_step": check_bool,
        "compare_with": _compare_with,
        "delayed_update": check_bool,
    }

    def __init__(
        self,
        learning_rate=D(0.01),
        eta_minus=D(0.5),
        eta_plus=D(1.2),
        min_step_size=D(1e-6),
        max_step_size=D(50.0),
        name=None,
        *,
        clamp_every_step=D(True),
        compare_with=D("gradient"),
        delayed_update=D(False),
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            eta_minus=eta_minus,
            eta_plus=eta_plus,
            min_step_size=min_step_size,
            max_step_size=max_step_size,
            clamp_every_step=clamp_every_step,
            compare_with=compare_with,
            delayed_update=delayed_update,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _check_combinations(self, config: dict) -> None:
        super()._check_combinations(config)
        low, high = config["min_step_size"], config["max_step_size"]
        if low > high:
            raise ValueError(
                "min_step_size must be <= max_step_size (the step sizes are clipped to "
                f"[min_step_size, max_step_size]), got min_step_size={low!r}, "
                f"max_step_size={high!r}"
            )
        if config["delayed_update"] and config["compare_with"] != "update":
            raise ValueError(
                "delayed_update=True applies the previous update, which prev holds only with "
                f"compare_with='update', got compare_with={config['compare_with']!r}"
            )


def _t0(name: str, value: Any) -> float:
    """A float >= 0 (a number of updates; torch's default 1e6 is a float)."""
    return check_float(name, value, 0.0)


class ASGD(_RuleOptimizer):
    """ASGD, averaged stochastic gradient descent (Polyak & Juditsky 1992), as
    torch.optim.ASGD: SGD with a decaying step size and a shrinking of the weights, and a
    running mean ``ax`` of the iterates from update t0 + 3 on (the Polyak-Ruppert average)::

        ASGD(learning_rate=0.01, lambd=1e-4, alpha=0.75, t0=1e6, name=None, preset="keras")

        p  = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)    (mu != 1),    ax = p    (mu == 1)
        then, for the next update:  eta = lr / (1 + lambd * lr * t)^alpha,
                                    mu = 1 / max(1, t - t0)

    The first update uses eta = learning_rate and mu = 1; every later one the eta and mu
    computed after the update before it, so a change of the learning rate reaches the step
    size one update late, as in torch. eta and mu are per-parameter state, as torch keeps
    them, under every preset (a parameter's own update count t advances only when it has a
    gradient). See :mod:`optimlab.rules.asgd`.

    The averaged parameters are :attr:`average` (one read-only array per parameter, zeros
    before its first update; equal to the parameter until the averaging starts);
    :meth:`assign_average` copies them into the parameters (at the end of training, where the
    theory says the average, not the last iterate, converges at the optimal rate).

    Keras and optax have no ASGD: the names are torch's (``lambd``, ``alpha``, ``t0``; the
    learning rate under Keras's name), and so are the defaults under every preset.
    ``preset="torch"`` is torch.optim.ASGD (``weight_decay`` is its L2 penalty, g = g + wd *
    p); ``"keras"`` takes Keras's decoupled weight decay (p = p - lr * wd * p first);
    ``"optax"`` has no default learning rate and optax's decay (``add_decayed_weights``
    before the step: L2). Ranges: lambd, alpha, t0 finite floats >= 0.
    """

    rule = rules.asgd
    hyperparameters = {"lambd": non_negative, "alpha": non_negative, "t0": _t0}

    def __init__(
        self,
        learning_rate=D(0.01),
        lambd=D(1e-4),
        alpha=D(0.75),
        t0=D(1e6),
        name=None,
        *,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            name=name,
            preset=preset,
            **kwargs,
        )
        # eta and mu are each parameter's own (torch's state), whatever the preset counts
        self._conventions = {**self._conventions, "step_counting": "per_parameter"}

    @property
    def average(self) -> list | None:
        """The averaged parameters ``ax`` (read-only views, one per parameter in the order of
        the build), or None before the build."""
        if not self.built:
            return None
        out = []
        for (ax,) in self._slots:
            view = ax.view()
            view.flags.writeable = False
            out.append(view)
        return out

    def assign_average(self, params=None) -> None:
        """Overwrite the parameters (default: all of them) with their averages ``ax``.

        Every parameter given must be one this optimizer tracks (ValueError otherwise, before
        anything is written)."""
        if not self.built:
            raise ValueError("assign_average needs a built optimizer (nothing is averaged yet)")
        targets = self._params if params is None else _as_list("params", params, arrays=True)
        for k, p in enumerate(targets):
            if id(p) not in self._index:
                raise ValueError(
                    f"assign_average got parameter {k} ({show(p)}), which this optimizer does "
                    "not track; nothing was changed"
                )
        for p in targets:
            p[...] = self._slots[self._index[id(p)]][0]


def _learning_rate_power(name: str, value: Any) -> float:
    """FTRL's learning-rate power: a float <= 0 (Keras refuses a positive one, with which the
    per-coordinate rate lr / n^(-power) would grow with the squared gradients)."""
    return check_float(name, value, None, 0.0)


class Ftrl(_RuleOptimizer):
    """FTRL-Proximal (McMahan et al. 2013, "Ad Click Prediction"), Keras 3's
    ``keras.optimizers.Ftrl``: per coordinate the sum of squared gradients n and a linear
    term z, from which the parameter is solved (exactly 0 wherever |z| <= l1)::

        Ftrl(learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
             l1_regularization_strength=0.0, l2_regularization_strength=0.0,
             l2_shrinkage_regularization_strength=0.0, beta=0.0, *, name=None,
             preset="keras")

        g_s = g + 2 * l2_shrinkage * p;   n' = n + g^2
        z = z + g_s - (n'^(-lr_power) - n^(-lr_power)) / lr * p
        p = (clip(z, -l1, l1) - z) / (n'^(-lr_power) / lr + 2 * l2 + beta / lr);   n = n'

    (``learning_rate_power=-0.5`` is the paper's alpha / (beta + sqrt(n)), 0 a fixed rate.)
    Ranges, as Keras's checks: ``learning_rate_power <= 0``; ``initial_accumulator_value``,
    the three strengths >= 0; and two that Keras does not check: ``beta >= 0``, the paper's
    smoothing of the per-coordinate rate, and ``learning_rate > 0``, also as a schedule's
    value (FTRL divides by it: Keras takes 0 and turns the parameters NaN). The state is
    Keras's: ``accumulator`` (n, starting at ``initial_accumulator_value``) and ``linear`` (z,
    starting at 0). See :mod:`optimlab.rules.ftrl`.

    Neither torch.optim nor optax (0.2.8, ``optax.contrib`` included) has an FTRL:
    ``preset="torch"`` and ``"optax"`` take Keras's numbers under those peers' conventions
    (L2 weight decay, their clipping; optax's preset asks for a learning rate, as its aliases
    do). Learning-rate powers other than -0.5 and 0 take ``n ** -learning_rate_power``, which
    NumPy and the compiled kernels round differently in the last bit: such an Ftrl runs on
    the reference engine (``engine="fused"`` is refused for it).
    """

    rule = rules.ftrl
    keras_variable_groups = (("accumulator", "linear"),)
    learning_rate_positive = True
    hyperparameters = {
        "learning_rate_power": _learning_rate_power,
        "initial_accumulator_value": non_negative,
        "l1_regularization_strength": non_negative,
        "l2_regularization_strength": non_negative,
        "l2_shrinkage_regularization_strength": non_negative,
        "beta": non_negative,
    }

    def __init__(
        self,
        learning_rate=D(0.001),
        learning_rate_power=D(-0.5),
        initial_accumulator_value=D(0.1),
        l1_regularization_strength=D(0.0),
        l2_regularization_strength=D(0.0),
        l2_shrinkage_regularization_strength=D(0.0),
        beta=D(0.0),
        *,
        name=None,
        preset="keras",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            learning_rate_power=learning_rate_power,
            initial_accumulator_value=initial_accumulator_value,
            l1_regularization_strength=l1_regularization_strength,
            l2_regularization_strength=l2_regularization_strength,
            l2_shrinkage_regularization_strength=l2_shrinkage_regularization_strength,
            beta=beta,
            name=name,
            preset=preset,
            **kwargs,
        )

    def _check_combinations(self, config: dict) -> None:
        super()._check_combinations(config)
        if self._engine_name == "fused" and not self._fusable(config):
            raise ValueError(
                "engine='fused' runs Ftrl with learning_rate_power -0.5 (a square root) or 0 "
                "(a fixed rate) only: another power is taken by NumPy and the compiled kernel "
                "with different last bits; got learning_rate_power="
                f"{config['learning_rate_power']!r} (use engine='auto' or 'reference')"
            )

    @staticmethod
    def _fusable(config: dict) -> bool:
        return rules.ftrl.power_kind(config["learning_rate_power"]) != rules.ftrl.GENERAL

    def _rule_fusable(self) -> bool:
        return self._fusable(self._config)

    def _slot_initial_value(self, slot: str) -> float:
        return self._config["initial_accumulator_value"] if slot == "accumulator" else 0.0


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__: cls
    for cls in (
        SGD,
        Adagrad,
        RMSprop,
        Adam,
        AdamW,
        Nadam,
        Adamax,
        Adadelta,
        Lion,
        RAdam,
        Rprop,
        ASGD,
        Muon,
        Lamb,
        Adafactor,
        Ftrl,
        ScheduleFreeAdamW,
    )
}

#: every class of the registry, then the helpers: ``from optimlab.optimizers import *`` (and so
#: ``optimlab``'s own namespace) follows :data:`OPTIMIZERS`
__all__ = [*OPTIMIZERS, "OPTIMIZERS", "get", "serialize", "deserialize"]


def _lookup(name: str, wrappers: bool = False) -> type[Optimizer]:
    from .wrappers import WRAPPERS

    known = {**OPTIMIZERS, **WRAPPERS} if wrappers else OPTIMIZERS
    lookup = {k.lower(): cls for k, cls in known.items()}
    cls = lookup.get(name.lower())
    if cls is None:
        raise ValueError(
            f"unknown optimizer {show(name)}; valid names (any case): {', '.join(known)}"
        )
    return cls


def _is_wrapper(obj: Any) -> bool:
    from .wrappers import WRAPPERS

    return isinstance(obj, tuple(WRAPPERS.values()))


def get(identifier: Any, **kwargs: Any) -> Optimizer | None:
    """An optimizer from an identifier, as ``keras.optimizers.get``: a name (case-insensitive)
    built with ``kwargs`` (``get("adam", learning_rate=1e-2)``), a :func:`serialize` dict, an
    optimizer (returned as it is), or None (returns None)."""
    if isinstance(identifier, str):
        return _lookup(identifier)(**kwargs)
    if kwargs:
        raise TypeError(
            f"keyword arguments {sorted(kwargs)} go with an optimizer name only, got "
            f"identifier {identifier!r}"
        )
    if identifier is None or isinstance(identifier, Optimizer) or _is_wrapper(identifier):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(  # Keras's words, then what is valid
        f"Could not interpret optimizer identifier: {show(identifier)}; valid identifiers: an "
        f"optimizer name ({', '.join(OPTIMIZERS)}, any case), a serialize() dict, an optimizer "
        "or None"
    )


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": ..., "config": optimizer.get_config()}``, as ``keras.optimizers.
    serialize`` (JSON-serializable); the wrappers (LossScaleOptimizer, MultiOptimizer,
    OptimizerMap) hold their optimizers' serialized dicts."""
    if not (isinstance(optimizer, Optimizer) or _is_wrapper(optimizer)):
        raise TypeError(f"serialize expects an optimlab optimizer, got {type(optimizer).__name__}")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict) -> Optimizer:
    """Rebuild an optimizer from :func:`serialize`'s output (the class name is
    case-insensitive, as in Keras; ``"config"`` may be left out or empty for the defaults)."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(
            f'expected a dict {{"class_name": ..., "config": {{...}}}}, got {config!r}'
        )
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ValueError(f"config['config'] must be a dict, got {inner!r}")
    return _lookup(config["class_name"], wrappers=True).from_config(inner)
