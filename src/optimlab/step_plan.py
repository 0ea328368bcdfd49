"""The cached plan of ``Optimizer.step(params)``: what stays fixed between steps, worked out once.

A :class:`~optimlab.Params` cannot change its arrays, shapes, dtype or groups, so after the first
step everything but the numbers of the step is known: which compiled loop runs each group, its
state buffers, its ``lr_scale`` and weight decay, the gradient buffer to check. A step then is::

    all_finite(params.grad)                   (one read; the full path names what is bad)
    lr = schedule(iterations)
    for each group k:  kernel_k(rule.scalars(t, lr * lr_scale_k), pipeline_k)
    iterations += 1

with exactly the arithmetic of the full path (``Optimizer._update_fused``), so results are
bit-identical; only the re-validation and numba's type dispatch are gone (a step on a 2-D
surface costs a few microseconds instead of about 30).

Options that need per-step work outside the kernels (norm clipping, gradient accumulation) keep
the full path. Changing a hyperparameter, loading a state dict or rebuilding drops the plan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .engines import fused

if TYPE_CHECKING:  # pragma: no cover
    from .optimizer import Optimizer
    from .params import Params


class StepPlan:
    """The per-group kernels and options of one optimizer on one ``Params``."""

    def __init__(self, params, check, groups, loss_scale, gscale, clipvalue, indices):
        self.params = params
        self.check = check
        self.groups = groups
        self.loss_scale = loss_scale
        self.gscale = gscale
        self.clipvalue = clipvalue
        self.indices = indices

    @classmethod
    def make(cls, opt: Optimizer, params: Params) -> StepPlan | None:
        """The plan of ``opt`` on ``params`` after a step, or None where the full path must
        run every step (reference engine, norm clipping, gradient accumulation)."""
        config = opt._config
        if (
            opt._engine_name == "reference"
            or not fused.elementwise(opt.rule)
            or not opt._rule_fusable()
            or not opt.built
            or config["gradient_accumulation_steps"]
            or config["clipnorm"]
            or config["global_clipnorm"]
        ):
            return None
        groups = []
        decoupled_mode = config["weight_decay_mode"] == "decoupled"
        own_decay = opt._rule_takes_decay()  # the rule takes the decay after its scalars
        for group, data, grad in params.group_arrays():
            i = opt._index.get(id(data))
            if i is None:
                return None
            slots = opt._slots[i]
            ema = None if opt._ema is None else opt._ema[i]
            arrays = [a for a in (*slots, ema) if a is not None]
            if not fused.supports(data, grad, *arrays):
                return None
            wd = config["weight_decay"] or None
            if group.weight_decay is not None:
                wd = group.weight_decay or None
            l2 = wd if wd is not None and not decoupled_mode else None
            decoupled = wd if wd is not None and decoupled_mode else None
            kernel = fused.Kernel(opt.rule, data, grad, slots, ema)
            if own_decay:
                kernel = _RuleDecay(kernel, decoupled)
                decoupled = None
            groups.append((i, kernel, group.lr_scale, l2, decoupled))
        loss_scale = config["loss_scale_factor"]
        check = None
        if config["nan_policy"] != "propagate":
            if loss_scale is None:
                check = fused.FiniteCheck(params.grad)
            else:
                check = lambda: fused.all_finite(params.grad, loss_scale)  # noqa: E731
        return cls(
            params,
            check,
            tuple(groups),
            None if loss_scale is None else float(loss_scale),
            -1.0 if config["maximize"] else None,
            config["clipvalue"] or None,
            frozenset(i for i, *_ in groups),
        )

    def run(self, opt: Optimizer) -> bool:
        """One step; False (and nothing changed) when a gradient is not finite, so that the
        full path can name it and apply the ``nan_policy``."""
        if self.check is not None and not self.check():
            return False
        lr = opt._current_learning_rate()
        scalars_for = opt._scalars_for_update(lr)
        mu = 0.0 if opt._ema is None else opt._ema_momentum()
        steps = opt._param_steps
        for i, kernel, lr_scale, l2, decoupled in self.groups:
            steps[i] += 1
            lr_i = lr * lr_scale
            wdlr = None if decoupled is None else decoupled * lr_i
            pipe = (self.loss_scale, self.gscale, self.clipvalue, l2, wdlr, mu, 1.0 - mu, None)
            kernel(scalars_for(i, lr_i), pipe)
        opt._finish_update(self.indices)
        return True


class _RuleDecay:
    """A kernel whose rule takes the decoupled decay itself (``rule.DECAY``): the group's decay
    (or None) goes after the scalars, as ``Optimizer._update_fused`` passes it."""

    def __init__(self, kernel, decay):
        self.kernel = kernel
        self.decay = decay

    def __call__(self, scalars, pipe) -> None:
        self.kernel((*scalars, self.decay), pipe)
