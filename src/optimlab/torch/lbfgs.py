"""``optimlab.torch.LBFGS``: torch.optim.LBFGS's signature, defaults, checks, closure semantics,
state layout and ``state_dict``, computed by optimlab's L-BFGS (:func:`optimlab.lbfgs.
lbfgs_step`, with :mod:`optimlab.rules.lbfgs` and :mod:`optimlab.line_search`)::

    opt = optimlab.torch.LBFGS(model.parameters(), lr=1, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss
    opt.step(closure)

As in torch: one parameter group; the closure is called under ``torch.enable_grad()``; the
global state lives on the first parameter (``func_evals``, ``n_iter``, ``d``, ``t``,
``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``);
``step`` returns the closure's first loss; a parameter without a gradient counts as zeros;
``line_search_fn`` other than None or ``'strong_wolfe'`` raises torch's ``RuntimeError`` at the
first step. The iteration runs on one flat tensor with torch's operations (``TORCH_OPS``);
parameters must be real CPU float32/float64 tensors of one dtype (others are refused before
anything moves).
Beyond torch: ``max_iter`` and ``history_size`` must be integers >= 1 (torch's step does
nothing with ``max_iter=0`` and fails with an IndexError with ``history_size=0``).

``preset`` (keyword-only): ``"torch"`` (default); ``"keras"``, which Keras lacks an L-BFGS
for and which is torch's numbers in optimlab's dialect too (``optimlab.presets.DEFAULTS``), so
the same iteration; ``"optax"``: optax.lbfgs's iteration as ``optimlab.LBFGS(preset="optax")``
runs it (one iteration per step, ``history_size`` 10, no stopping rules, the zoom line search:
``line_search_fn="zoom"``, the default there; None a fixed step), the arguments left out
taking its defaults. Other presets' param groups hold ``"preset"``, and a state dict loads
only into an optimizer of the same preset.
"""

from __future__ import annotations

import warnings

import torch

from .._validation import MAX_COUNT, check_int, show
from ..lbfgs import lbfgs_step, validate_config
from ..presets import DEFAULTS
from ._presets import check_preset, resolve
from ._presets import default as D

__all__ = ["LBFGS"]

_DTYPES = (torch.float32, torch.float64)


class TorchOps:
    """The vector operations of :func:`optimlab.lbfgs.lbfgs_step` as torch.optim.LBFGS
    computes them on tensors (``add(alpha=)``, ``abs().max()``, ``abs().sum()``), so that the
    iteration makes torch's roundings."""

    @staticmethod
    def axpy(x, a, y):
        """x + a y, torch's ``add(y, alpha=a)``"""
        return torch.add(x, y, alpha=a)

    @staticmethod
    def abs_max(v):
        """max |v_i|"""
        return v.abs().max()

    @staticmethod
    def abs_sum(v):
        """sum |v_i|"""
        return v.abs().sum()

    @staticmethod
    def sqrt(x):
        """the square root of a 0-dim tensor"""
        return x.sqrt()


TORCH_OPS = TorchOps()


class LBFGS(torch.optim.Optimizer):
    """torch.optim.LBFGS, computed by optimlab (see the module docstring).

    Args (torch's, with torch's defaults): ``params``, ``lr=1`` (the initial step of each
    iteration; the first is min(1, 1/|g|_1) lr), ``max_iter=20`` (iterations per step),
    ``max_eval=None`` (evaluations per step; None: max_iter * 5 // 4), ``tolerance_grad=1e-7``
    (stop when max |g| <= it), ``tolerance_change=1e-9`` (stop when g.d, max |t d| or a change
    of the loss falls below it), ``history_size=100``, ``line_search_fn=None`` (a fixed step)
    or ``'strong_wolfe'`` (:func:`optimlab.line_search.strong_wolfe`).
    """

    def __init__(
        self,
        params,
        lr: float | torch.Tensor = D(1),
        max_iter: int = D(20),
        max_eval: int | None = D(None),
        tolerance_grad: float = D(1e-7),
        tolerance_change: float = D(1e-9),
        history_size: int = D(100),
        line_search_fn: str | None = D(None),
        *,
        preset: str = "torch",
    ) -> None:
        preset = check_preset(preset, "LBFGS")
        given = resolve(
            "LBFGS",
            preset,
            dict(
                lr=lr,
                max_iter=max_iter,
                max_eval=max_eval,
                tolerance_grad=tolerance_grad,
                tolerance_change=tolerance_change,
                history_size=history_size,
                line_search_fn=line_search_fn,
            ),
            self.preset_names,
        )
        lr, max_iter, max_eval = given["lr"], given["max_iter"], given["max_eval"]
        tolerance_grad, tolerance_change = given["tolerance_grad"], given["tolerance_change"]
        history_size, line_search_fn = given["history_size"], given["line_search_fn"]
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        max_iter = check_int("max_iter", max_iter, 1, MAX_COUNT)
        history_size = check_int("history_size", history_size, 1, MAX_COUNT)
        if max_eval is None and preset != "optax":  # (optax's: no limit)
            max_eval = max_iter * 5 // 4
        if preset == "optax":  # optimlab.LBFGS(preset="optax")'s checks of its options
            self._config(
                preset,
                lr,
                max_iter,
                max_eval,
                tolerance_grad,
                tolerance_change,
                history_size,
                line_search_fn,
            )
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        if preset != "torch":
            defaults["preset"] = preset
        self.preset = preset
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    #: torch's argument -> optimlab.LBFGS's option, for the preset's defaults
    preset_names = dict(
        lr="learning_rate",
        max_iter="max_iter",
        max_eval="max_eval",
        tolerance_grad="tolerance_grad",
        tolerance_change="tolerance_change",
        history_size="memory_size",
        line_search_fn="line_search",
    )

    @staticmethod
    def _config(preset, lr, max_iter, max_eval, tol_grad, tol_change, history, line_search):
        """optimlab's L-BFGS options of this step: the preset's, with the group's values
        (validated by :func:`optimlab.lbfgs.validate_config` under ``preset="optax"``)."""
        cfg = dict(DEFAULTS["LBFGS"][preset])
        cfg.update(
            learning_rate=lr,
            memory_size=history,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tol_grad,
            tolerance_change=tol_change,
            line_search=line_search,
        )
        if preset == "optax":
            if isinstance(lr, torch.Tensor):
                cfg["learning_rate"] = float(lr)
            cfg = validate_config(cfg)
        return cfg

    def _check_params(self) -> torch.dtype:
        dtypes = set()
        for i, p in enumerate(self._params):
            if p.device.type != "cpu" or p.dtype not in _DTYPES:
                raise TypeError(
                    f"optimlab.torch.LBFGS runs on real CPU float32/float64 tensors; parameter "
                    f"{i} is {p.dtype} on {p.device}"
                )
            dtypes.add(p.dtype)
        if len(dtypes) > 1:
            raise TypeError(
                "optimlab.torch.LBFGS needs one dtype for all parameters, got "
                f"{sorted(map(str, dtypes))}"
            )
        return dtypes.pop()

    def _gather_flat_grad(self) -> torch.Tensor:
        views = []
        for p in self._params:
            if p.grad is None:
                views.append(p.new_zeros(p.numel()))
            else:
                grad = p.grad.to_dense() if p.grad.is_sparse else p.grad
                views.append(grad.reshape(-1))
        return torch.cat(views, 0)

    def _set_flat(self, x: torch.Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(x[offset : offset + n].view_as(p))
            offset += n

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's ``load_state_dict``, refused (before anything changes) for a state dict
        saved under another preset."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        for index, group in enumerate(groups if isinstance(groups, list | tuple) else ()):
            saved = group.get("preset", "torch") if isinstance(group, dict) else self.preset
            if not (type(saved) is str and saved == self.preset):
                raise ValueError(
                    f"param group {index} of the state dict was saved with preset={show(saved)}; "
                    f"this optimizer's preset must be the same, it is {self.preset!r}; nothing "
                    "was changed"
                )
        super().load_state_dict(state_dict)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("preset", self.defaults.get("preset", "torch"))

    @torch.no_grad()
    def step(self, closure):  # type: ignore[override]
        """One L-BFGS step (torch's ``LBFGS.step``): up to ``max_iter`` iterations, each a
        two-loop direction d = -H g and x = x + t d; returns the closure's first loss."""
        group = self.param_groups[0]
        self._check_params()
        closure = torch.enable_grad()(closure)
        lr = group["lr"]
        lr = lr.squeeze() if isinstance(lr, torch.Tensor) and lr.dim() != 0 else lr  # _to_scalar
        line_search = group["line_search_fn"]
        cfg = self._config(
            self.preset,
            lr,
            group["max_iter"],
            group["max_eval"],
            group["tolerance_grad"],
            group["tolerance_change"],
            group["history_size"],
            line_search
            if self.preset == "optax"
            else (None if line_search is None else "strong_wolfe"),
        )
        first = []

        def evaluate(x):
            self._set_flat(x)
            loss = closure()
            if not first:
                first.append(loss)
            return float(loss), self._gather_flat_grad()

        x0 = torch.cat([p.detach().reshape(-1) for p in self._params])
        state = self.state[self._params[0]]
        core = dict(state)
        if self.preset != "optax" and line_search is not None and line_search != "strong_wolfe":
            # torch evaluates the closure once, then refuses at the first line search
            loss, grad = evaluate(x0)
            state["func_evals"] = state.get("func_evals", 0) + 1
            if grad.abs().max() <= group["tolerance_grad"]:
                state.setdefault("n_iter", 0)
                return first[0]
            state["n_iter"] = state.get("n_iter", 0) + 1
            raise RuntimeError("only 'strong_wolfe' is supported")
        try:
            with warnings.catch_warnings():
                # optax's zoom takes np.maximum of its slopes, here 0-d tensors, which NumPy 2
                # wraps back into tensors with a DeprecationWarning (the same values)
                warnings.filterwarnings(
                    "ignore", message="__array_wrap__ must accept", category=DeprecationWarning
                )
                _, x, core = lbfgs_step(core, x0, evaluate, cfg, ops=TORCH_OPS)
        except BaseException:
            self._set_flat(x0)
            raise
        self._set_flat(x)
        state.update(core)
        return first[0]
