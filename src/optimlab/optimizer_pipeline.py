"""The per-step pipeline of the optimizer runtime (:class:`UpdatePipeline`, a base of
:class:`optimlab.optimizer.Optimizer`). One call of ``apply_gradients`` runs, in Keras's
order::

    check every (gradient, parameter) pair, the gradients' finiteness and the learning rate
    g = g / loss_scale_factor
    accumulate: every k-th call updates with the mean of the last k gradients
    g = -g                                       (maximize)
    clip (clipnorm | global_clipnorm | clipvalue)
    weight decay: p = p - lr * wd * p (decoupled) or g = g + wd * p (l2)
    the rule: p, state = rule(p, g, state)       (the reference or the fused engine; a rule
                                                 with DECAY takes the decoupled decay itself)
    ema = m * ema + (1 - m) * p                  (use_ema; m = 0 on the first update)
    iterations = iterations + 1

Nothing is changed before every check has passed: ``_prepare_step`` makes every check and
``_commit_step`` applies, so a wrapper of several optimizers (:mod:`optimlab.wrappers`)
prepares all of them before it commits any. ``loss_scale`` hands a
:class:`~optimlab.LossScaleOptimizer`'s dynamic scale to the first step in place of
``loss_scale_factor``: one division, whichever owns the scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import clipping
from .engines import ENGINES, fused
from .optimizer_checks import (
    _all_finite,
    _as_list,
    _check_gradients_apart,
    _check_param,
    _checked_gradient,
    _count_non_finite,
    _keras_missing_gradients,
    _largest_float,
)
from .params import Params
from .step_plan import StepPlan

#: ``_step``'s default ``loss_scale``: the optimizer's own ``loss_scale_factor``
OWN_LOSS_SCALE = object()
#: what ``_prepare_step`` returns for a call that ``nan_policy="skip"`` skips
SKIP = object()


class UpdatePipeline:
    """``apply_gradients``, ``apply`` and ``step(params)``, and the update they share: the
    checks, accumulation, the gradient transforms, the rule on either engine, the EMA and
    the counters. The configuration and state it reads are :class:`Optimizer`'s."""

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, np.ndarray]]) -> None:
        """Apply one (gradient, parameter) pair per parameter, updating parameters in place.

        ``opt.apply_gradients(zip(grads, params))`` as in Keras. ``zip`` cannot tell when the
        two lists differ in length; :meth:`apply` can, or write ``zip(grads, params,
        strict=True)``. A None gradient leaves its parameter (and its state) untouched; with
        ``preset="keras"`` it warns, and a call whose gradients are all None raises Keras's
        ``ValueError`` (``presets.CONVENTIONS[preset]["missing_gradients"]``).
        """
        pairs = []
        for k, pair in enumerate(_as_list("grads_and_vars", grads_and_vars)):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise TypeError(
                    f"grads_and_vars item {k} must be a (gradient, parameter) pair, got {pair!r}"
                )
            pairs.append((pair[0], pair[1]))
        self._step(pairs)

    def apply(self, grads: Sequence[Any], params: Sequence[np.ndarray] | None = None) -> None:
        """Apply ``grads`` to ``params`` (default: the parameters of the build), in place."""
        grads = _as_list("grads", grads)
        if params is None:
            if not self.built:
                raise ValueError("params must be given on the first call (nothing is built yet)")
            params = self._params
        params = _as_list("params", params, arrays=True)
        if len(grads) != len(params):
            raise ValueError(
                f"got {len(grads)} gradients for {len(params)} parameters; "
                "there must be exactly one gradient per parameter"
            )
        self._step(list(zip(grads, params, strict=True)))

    def step(self, params) -> None:
        """One update of every parameter in ``params`` (a :class:`~optimlab.Params`) with its
        gradients ``params.grads``: the optimizer sees one parameter per group (a contiguous
        range of the flat buffer), so a model of any number of arrays costs one fused pass per
        group. Each group's ``lr_scale`` and ``weight_decay`` apply to its range.

        From the second step on, a fused optimizer runs a cached plan
        (:class:`~optimlab.step_plan.StepPlan`): the same arithmetic, without re-validating
        arrays that a ``Params`` cannot change."""
        plan = self.__dict__.get("_plan")
        if plan is not None and plan.params is params and plan.run(self):
            return
        if not isinstance(params, Params):
            raise TypeError(
                f"step() takes an optimlab.Params, got {type(params).__name__}; use "
                "apply_gradients(zip(grads, params)) for separate arrays"
            )
        if getattr(self.rule, "TENSOR", False):
            raise TypeError(
                f"{type(self).__name__} updates whole matrices, and step() would hand it the "
                "flat ranges of a Params; use opt.apply_gradients(zip(grads, arrays)) with "
                "the parameter arrays themselves"
            )
        arrays = params.group_arrays()
        if self.built and any(id(data) not in self._index for _, data, _ in arrays):
            raise ValueError(
                "this optimizer was built for other parameters; one optimizer per Params"
            )
        if not self.built:  # before anything changes (the padding below included)
            self._check_in_dtype(self._config, self._learning_rate, params.dtype)
        if not self._params_finite(params):
            return
        if params._gaps.size:  # the padding between arrays is no gradient
            params.grad[params._gaps] = 0
        self._group_options = {
            id(data): (group.lr_scale, group.weight_decay) for group, data, _ in arrays
        }
        pairs = [(grad, data) for _, data, grad in arrays]
        if self.built:  # a Params cannot change shape or dtype: nothing to validate again
            index = self._index
            trusted = ([(index[id(p)], p, g) for g, p in pairs], self._params)
            self._step(pairs, trusted=trusted, finite=True)
        else:
            self._step(pairs, finite=True)
        if plan is None or plan.params is not params:  # (the plan knows no exclusions)
            self._plan = None if self._excluded else StepPlan.make(self, params)

    def _params_finite(self, params: Params) -> bool:
        """The ``nan_policy`` on a whole ``Params`` gradient buffer (one read): True to go on,
        False to skip the step, FloatingPointError naming the arrays for ``"raise"``."""
        policy = self._config["nan_policy"]
        if policy == "propagate" or fused.all_finite(
            params.grad, self._config["loss_scale_factor"]
        ):
            return True
        scale = self._config["loss_scale_factor"]
        counts = {}
        with np.errstate(over="ignore", invalid="ignore"):  # the overflow is what we report
            for name, g in params.grads.items():
                count = _count_non_finite(g if scale is None else g / g.dtype.type(scale))
                if count:
                    counts[name] = count
        if not counts:  # only the padding between arrays, which the step zeroes
            return True
        if policy == "skip":
            self._skipped_steps += 1
            return False
        where = ", ".join(f"{name!r} ({count})" for name, count in counts.items())
        raise FloatingPointError(
            f"the gradient of {where} has {sum(counts.values())} non-finite value(s) (NaN or "
            "Inf); nothing was changed. Pass nan_policy='skip' to skip such steps or "
            "'propagate' to apply them"
        )

    def _step(
        self,
        pairs: list[tuple[Any, np.ndarray]],
        trusted=None,
        finite=False,
        loss_scale: Any = OWN_LOSS_SCALE,
    ) -> None:
        """The full path of an update; ``finite``: the gradients were already checked;
        ``loss_scale``: divide the gradients by this instead of ``loss_scale_factor`` (the
        dynamic scale of a :class:`~optimlab.LossScaleOptimizer`)."""
        self._commit_step(self._prepare_step(pairs, trusted, finite, loss_scale))

    def _prepare_step(
        self, pairs, trusted=None, finite=False, loss_scale: Any = OWN_LOSS_SCALE
    ) -> Any:
        """Every check of an update, nothing changed: None when there is nothing to apply,
        :data:`SKIP` for a call that ``nan_policy="skip"`` skips, else what
        :meth:`_commit_step` applies. A wrapper that updates several optimizers at once
        (:class:`~optimlab.MultiOptimizer`) prepares all of them before it commits any, so that
        a refused call changes nothing."""
        items, all_params = trusted or self._checked_pairs(pairs)
        if len(items) < len(pairs) and self._conventions["missing_gradients"] == "keras":
            _keras_missing_gradients(pairs, len(items))
        if not items:
            return None
        if not self.built:  # before the loss scale divides by a factor the dtype cannot hold
            self._checked_build_params(all_params)
            narrowest = min((p.dtype for p in all_params), key=lambda d: d.itemsize)
            self._check_in_dtype(self._config, self._learning_rate, narrowest)
        config = self._config
        grads = [g for _, _, g in items]
        factor = config["loss_scale_factor"] if loss_scale is OWN_LOSS_SCALE else loss_scale
        if factor is not None:
            grads = [g / g.dtype.type(factor) for g in grads]
        if config["nan_policy"] != "propagate" and not finite:
            bad = [(k, g) for k, g in enumerate(grads) if not _all_finite(g)]
            if bad:
                if config["nan_policy"] == "skip":
                    return SKIP
                k, g = bad[0]
                count = _count_non_finite(g)
                raise FloatingPointError(
                    f"gradient {items[k][0] if items[k][0] is not None else k} has {count} "
                    f"non-finite value(s) (NaN or Inf); nothing was changed. Pass "
                    f"nan_policy='skip' to skip such steps or 'propagate' to apply them"
                )
        k = config["gradient_accumulation_steps"]
        updating = not k or self._micro_step == k - 1
        if updating:
            limit = None if self.built else _largest_float(all_params)
            lr = self._current_learning_rate(limit)
        else:
            lr = 0.0
        return items, all_params, grads, lr, updating

    def _commit_step(self, prepared: Any) -> None:
        """Apply what :meth:`_prepare_step` checked (it raises nothing on checked input)."""
        if prepared is None:
            return
        if prepared is SKIP:
            self._skipped_steps += 1
            return
        items, all_params, grads, lr, updating = prepared
        config = self._config
        k = config["gradient_accumulation_steps"]
        if not self.built:
            self.build(all_params)
            items = [(self._index[id(p)], p, g) for (_, p, _), g in zip(items, grads, strict=True)]
        else:
            items = [(i, p, g) for (i, p, _), g in zip(items, grads, strict=True)]

        if k:
            # The accumulators hold sum(g / k), not sum(g): the mean of k finite gradients is
            # finite, their sum may not be (k float32 gradients of 3e38).
            if not updating:
                for i, _, g in items:
                    acc = self._accumulators[i]
                    acc += g / acc.dtype.type(k)
                    self._accumulated[i] = True
                self._micro_step += 1
                return
            merged = {i: g for i, _, g in items}
            items = []
            for i, acc in enumerate(self._accumulators):
                if i in merged or self._accumulated[i]:
                    mean = acc + merged[i] / acc.dtype.type(k) if i in merged else acc.copy()
                    items.append((i, self._params[i], np.asarray(mean)))
                acc[...] = 0.0
                self._accumulated[i] = False
            self._micro_step = 0
        if self._fused_for(items):
            self._update_fused(items, lr)
        else:
            self._update(items, lr)

    def _rule_fusable(self) -> bool:
        """Whether the fused kernel computes this configuration of the rule bit for bit as
        the reference engine does (Ftrl's general learning-rate powers do not)."""
        return True

    def _fused_for(self, items) -> bool:
        """Whether this update runs on the fused engine."""
        if (
            self._engine_name == "reference"
            or not fused.elementwise(self.rule)
            or not self._rule_fusable()
        ):
            return False
        key = tuple((id(p), id(g), p.shape) for _, p, g in items)
        if key == self._fused_key:  # the same arrays as last time (a Params): same answer
            return True
        ok = all(
            fused.supports(
                p, np.asarray(g), *(s for s in self._slots[i] if isinstance(s, np.ndarray))
            )
            for i, p, g in items
        )
        if ok:
            self._fused_key = key
        if not ok and self._engine_name == "fused":
            raise TypeError(
                "engine='fused' needs float32/float64 C-contiguous parameters and gradients of "
                "the parameter's dtype; use engine='auto' to fall back to the reference engine"
            )
        return ok

    def _update_fused(self, items: list[tuple[int, np.ndarray, np.ndarray]], lr: float) -> None:
        """``_update`` in one compiled pass per parameter (``engines.fused``): same results."""
        config = self._config
        style = self._conventions["clip_style"]
        sign = -1.0 if config["maximize"] else 1.0
        global_scale = 1.0
        if config["global_clipnorm"]:
            norm = fused.l2_norm([g for _, _, g in items])
            global_scale = clipping.norm_scale(norm, config["global_clipnorm"], style)
        decoupled_mode = config["weight_decay_mode"] == "decoupled"
        ema_momentum = None if self._ema is None else self._ema_momentum()
        own_decay = self._rule_takes_decay()  # as in _update: the rule's, after its scalars
        scalars_for = self._scalars_for_update(lr)
        updated = set()
        for i, p, g in items:
            self._param_steps[i] += 1
            lr_i, wd = self._item_options(p, lr)
            decoupled = wd is not None and decoupled_mode and not own_decay
            scale = global_scale
            if config["clipnorm"]:
                scale = clipping.norm_scale(fused.l2_norm([g]), config["clipnorm"], style)
            pipe = fused.pipeline(
                gscale=sign * scale,
                clipvalue=config["clipvalue"] or None,
                l2=wd if wd is not None and not decoupled_mode else None,
                decoupled_wdlr=wd * lr_i if decoupled else None,
                ema_momentum=ema_momentum,
            )
            scalars = scalars_for(i, lr_i)
            if own_decay:
                scalars = (*scalars, wd if decoupled_mode else None)
            ema = None if self._ema is None else self._ema[i]
            fused.apply(self.rule, p, np.asarray(g), self._slots[i], scalars, pipe, ema)
            updated.add(i)
        self._finish_update(averaged=updated)

    def _ema_momentum(self) -> float:
        """The EMA momentum of this update: 0 on the first (the average starts at p)."""
        return 0.0 if self._iterations == 0 else self._config["ema_momentum"]

    def _finish_update(self, averaged=frozenset()) -> None:
        """Move the EMA of every parameter (those in ``averaged`` were already moved inside the
        fused pass; the others move too, gradient or not), overwrite the parameters with it
        every ``ema_overwrite_frequency`` updates, and count the update."""
        if self._ema is not None:
            m = self._ema_momentum()
            for i, (p, avg) in enumerate(zip(self._params, self._ema, strict=True)):
                if i not in averaged:
                    avg[...] = avg.dtype.type(m) * avg + avg.dtype.type(1.0 - m) * p
            freq = self._config["ema_overwrite_frequency"]
            if freq and (self._iterations + 1) % freq == 0:
                for p, avg in zip(self._params, self._ema, strict=True):
                    p[...] = avg
        self.__dict__["_iterations"] += 1  # no __setattr__: the hot path

    def _update(self, items: list[tuple[int, np.ndarray, np.ndarray]], lr: float) -> None:
        config = self._config
        grads = [g for _, _, g in items]
        if config["maximize"]:
            grads = [-g for g in grads]
        style = self._conventions["clip_style"]
        if config["clipnorm"]:
            grads = clipping.clip_by_norm(grads, config["clipnorm"], style)
        elif config["global_clipnorm"]:
            grads = clipping.clip_by_global_norm(grads, config["global_clipnorm"], style)
        elif config["clipvalue"]:
            grads = clipping.clip_by_value(grads, config["clipvalue"])
        decoupled_mode = config["weight_decay_mode"] == "decoupled"
        # a rule with DECAY applies the decoupled decay itself (where it goes changes its
        # step: Adafactor's RMS(p)); it gets wd, or None, after its scalars
        own_decay = self._rule_takes_decay()
        scalars_for = self._scalars_for_update(lr)
        for (i, p, _), g in zip(items, grads, strict=True):
            self._param_steps[i] += 1
            lr_i, wd = self._item_options(p, lr)
            if wd is not None and not decoupled_mode:
                g = g + g.dtype.type(wd) * p
            scalars = scalars_for(i, lr_i)
            if own_decay:
                scalars = (*scalars, wd if decoupled_mode else None)
            elif wd is not None and decoupled_mode:
                p -= p * p.dtype.type(wd * lr_i)
            ENGINES["reference"].apply(self.rule, p, g, self._slots[i], scalars)

        self._finish_update()

    def _rule_takes_decay(self) -> bool:
        """Whether the rule applies the decoupled weight decay itself (``rule.DECAY``; an
        optimizer whose hyperparameters decide it overrides this)."""
        return getattr(self.rule, "DECAY", False)

    def _item_options(self, p: np.ndarray, lr: float) -> tuple[float, float | None]:
        """(learning rate, weight decay or None) of parameter ``p`` in this update: the
        optimizer's, or those of its :class:`~optimlab.Params` group; no decay for a parameter
        given to :meth:`exclude_from_weight_decay`. A decay of 0 is off (AdamW keeps a 0 in
        its config)."""
        excluded = id(p) in self._excluded
        wd = None if excluded else (self._config["weight_decay"] or None)
        group = self._group_options.get(id(p))
        if group is None:
            return lr, wd
        lr_scale, group_wd = group
        if group_wd is not None and not excluded:
            wd = group_wd or None
        return lr * lr_scale, wd

    def _shape_weight_decay(self, shape: tuple, wd: float | None) -> float | None:
        """The weight decay of a parameter of ``shape`` (not excluded) whose decay would be
        ``wd`` (the optimizer's or its group's; None: off): ``wd`` itself here; Muon gives
        the parameters that are not matrices ``adam_weight_decay``. The traced faces, which
        hold no NumPy parameters, ask by this hook."""
        return wd

    def _scalars_for_update(self, lr: float):
        """``scalars_for(i, lr_i)``: the rule's scalars of parameter ``i`` at learning rate
        ``lr_i``. With one global step count the step state (Nadam's momentum product) advances
        once per update, however many learning rates the groups ask for."""
        if self._conventions["step_counting"] == "per_parameter":
            return lambda i, lr_i: self._step_scalars(i, self._param_steps[i], lr_i)
        t = self._iterations + 1
        before = self._step_state[0] if self._step_state else None
        cache: dict[float, tuple] = {}

        def scalars_for(i, lr_i):
            if lr_i not in cache:
                if before is not None:
                    self._step_state[0] = before
                cache[lr_i] = self._step_scalars(0, t, lr_i)
            return cache[lr_i]

        scalars_for(0, lr)
        return scalars_for

    def _step_scalars(self, k: int, t: int, lr: float) -> tuple:
        """The rule's per-step scalars for step ``t``, advancing step state ``k`` if any."""
        memo = self.__dict__.get("_hyper_memo")
        if memo is None or memo[0] != len(self._params):  # rebuilt after a config change
            stateful = getattr(self.rule, "STEP_STATE", None) is not None
            memo = (len(self._params), self._rule_hyperparameters(), stateful)
            self.__dict__["_hyper_memo"] = memo
        _, hyper, stateful = memo
        if stateful:
            scalars, self._step_state[k] = self.rule.scalars(t, lr, self._step_state[k], **hyper)
            return scalars
        return self.rule.scalars(t, lr, **hyper)

    def _power_dtype(self):
        """The dtype the bias-correction powers round beta to (None: exact double precision);
        see ``presets.CONVENTIONS["keras"]["power_precision"]``."""
        if self._conventions["power_precision"] != "dtype" or not self._params:
            return None
        count, dtype = self._power_dtype_memo
        if count != len(self._params):
            dtype = min((p.dtype for p in self._params), key=lambda d: d.itemsize)
            self._power_dtype_memo = (len(self._params), dtype)
        return dtype

    def _rule_hyperparameters(self) -> dict:
        """The keyword arguments of ``rule.scalars`` (subclasses map their names)."""
        return {key: self._config[key] for key in self.hyperparameters}

    def _checked_pairs(self, pairs):
        """Validate every pair before anything changes.

        Returns the (index or None, p, g) of the pairs with a gradient, and every parameter
        (a first call builds the optimizer with all of them, None gradients included)."""
        out, params = [], []
        seen: set[int] = set()
        for k, (g, p) in enumerate(pairs):
            _check_param(p, k)
            if id(p) in seen:
                raise ValueError(f"parameter {k} appears twice in this update")
            seen.add(id(p))
            params.append(p)
            if self.built and id(p) not in self._index:
                raise ValueError(
                    f"parameter {k} (shape {p.shape}, {p.dtype}) is not one of the "
                    f"{len(self._params)} parameters this optimizer was built with; build it "
                    "with all of them first: optimizer.build(params)"
                )
            if g is not None:
                out.append((self._index.get(id(p)), p, _checked_gradient(g, p, k)))
        if out:
            _check_gradients_apart(
                out, self._params if self.built else params, self._roots if self.built else None
            )
        return out, params
