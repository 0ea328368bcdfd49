"""L-BFGS with a closure, in the NumPy dialect (``optimlab.LBFGS``), and the iteration that
``optimlab.torch.LBFGS`` drives as well.

L-BFGS is not a per-gradient rule: each step evaluates the objective several times (a line
search), so it takes a closure instead of gradients::

    def closure(params):                 # params: the list of NumPy arrays being optimized
        loss = ...                       # a real number
        grads = [...]                    # one array per parameter, of its shape
        return loss, grads

    opt = ol.LBFGS(preset="torch", line_search="strong_wolfe")
    loss = opt.step(closure, params)     # params are updated in place

One step is torch's ``LBFGS.step``: up to ``max_iter`` iterations of::

    g = gradient at x                    (the closure, or the line search's last evaluation)
    (s, y) = (x - x_prev, g - g_prev)    remembered as in :func:`optimlab.rules.lbfgs.remember`
    d = -H g                             the two-loop recursion, :func:`rules.lbfgs.two_loop`
    t = a line search along d (or a fixed step)
    x = x + t d

The math is :mod:`optimlab.rules.lbfgs` and :mod:`optimlab.line_search`; this module holds the
iteration and each peer's conventions, all options with a preset (``optimlab differences``
lists them with measured numbers):

=========================  =======================================  ==========================
option                     ``preset="torch"`` (torch.optim.LBFGS)   ``preset="optax"``
=========================  =======================================  ==========================
``max_iter``               20 iterations per step                   1 (one ``update`` call)
``max_eval``               max_iter * 5 // 4 evaluations per step   None (no limit)
``tolerance_grad``         stop when max |g| <= 1e-7                None (never)
``tolerance_change``       stop when g.d, max |t d| or a loss       None (never)
                           change falls below 1e-9
``memory_size``            100 pairs (torch's ``history_size``)     10 (``memory_size``)
``line_search``            None: the fixed step t = lr              ``"zoom"`` (optax's
                           (``"strong_wolfe"`` torch's search)      ``scale_by_zoom_linesearch``)
``learning_rate_role``     ``"step"``: lr is the initial step t     ``"direction"``: d is
                                                                    scaled by lr, t starts at 1
``first_step``             ``"l1"``: t = min(1, 1/|g|_1) lr          ``"l2"``: H_0 = min(1,
                           on the first iteration                   1/|g|_2) I at first
``min_curvature``          1e-10: pairs with y.s <= 1e-10 skipped   None: every pair kept
``secant``                 ``"step"``: s = t d                      ``"difference"``: s = x -
                                                                    x_prev
``reuse_value``            False: each step calls the closure       True: the line search's
                                                                    last value and gradient
                                                                    (``value_and_grad_from_
                                                                    state``)
``loss_dtype``             ``"float64"``: ``float(loss)``           ``"params"``: the loss in
                                                                    the parameters' dtype
=========================  =======================================  ==========================

With ``preset="keras"`` (the default; Keras has no L-BFGS) the numbers are torch's.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from . import line_search as ls
from . import presets
from ._validation import (
    MAX_COUNT,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_optional_float,
    show,
)
from .rules import lbfgs as rule

__all__ = ["LBFGS", "lbfgs_step", "validate_config", "TORCH_STATE_KEYS"]

#: the keys of torch.optim.LBFGS's state, in the order torch writes them
TORCH_STATE_KEYS = (
    "func_evals",
    "n_iter",
    "al",
    "d",
    "t",
    "old_dirs",
    "old_stps",
    "ro",
    "H_diag",
    "prev_flat_grad",
    "prev_loss",
)

_LINE_SEARCHES = (None, "strong_wolfe", "zoom")


def _optional_int(name, value, low):
    return None if value is None else check_int(name, value, low, MAX_COUNT)


def _optional_non_negative(name, value):
    return check_optional_float(name, value, 0.0)


def _curvature_rtol(name, value):
    """c2 of the curvature test: a float in (0, 1), or infinity (optax's way to switch the
    test off: the zoom then only backtracks to sufficient decrease)."""
    if isinstance(value, float | int) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    try:
        return check_float(name, value, 0.0, 1.0, low_open=True, high_open=True)
    except ValueError:
        raise ValueError(f"curv_rtol must be a float in (0, 1) or inf, got {show(value)}") from None


_CHECKS = {
    "learning_rate": lambda n, v: check_float(n, v, 0.0),
    "memory_size": lambda n, v: check_int(n, v, 1, MAX_COUNT),
    "max_iter": lambda n, v: check_int(n, v, 1, MAX_COUNT),
    "max_eval": lambda n, v: _optional_int(n, v, 1),
    "tolerance_grad": _optional_non_negative,
    "tolerance_change": _optional_non_negative,
    "line_search": lambda n, v: check_choice(n, v, _LINE_SEARCHES),
    "max_linesearch_steps": lambda n, v: _optional_int(n, v, 1),
    "slope_rtol": lambda n, v: check_float(n, v, 0.0, 1.0, low_open=True, high_open=True),
    "curv_rtol": lambda n, v: _curvature_rtol(n, v),
    "wolfe_tolerance_change": lambda n, v: check_float(n, v, 0.0),
    "initial_guess_strategy": lambda n, v: check_choice(n, v, ("one", "keep")),
    "max_learning_rate": lambda n, v: check_optional_float(n, v, 0.0, low_open=True),
    "increase_factor": lambda n, v: check_float(n, v, 1.0, low_open=True),
    "approx_dec_rtol": _optional_non_negative,
    "stepsize_precision": lambda n, v: check_float(n, v, 0.0),
    "tol": lambda n, v: check_float(n, v, 0.0),
    "scale_init_precond": check_bool,
    "learning_rate_role": lambda n, v: check_choice(n, v, ("step", "direction")),
    "first_step": lambda n, v: check_choice(n, v, ("l1", "l2")),
    "min_curvature": _optional_non_negative,
    "secant": lambda n, v: check_choice(n, v, ("step", "difference")),
    "reuse_value": check_bool,
    "loss_dtype": lambda n, v: check_choice(n, v, ("float64", "params")),
    "nan_policy": lambda n, v: check_choice(n, v, ("raise", "propagate")),
}


def validate_config(values: dict) -> dict:
    """Every option through its check (errors name the option, its value and the valid
    range); ``max_eval=None`` under a finite-evaluation preset is resolved by the caller."""
    unknown = set(values) - set(_CHECKS)
    if unknown:
        raise TypeError(f"LBFGS got unexpected options {sorted(unknown)}")
    return {name: _CHECKS[name](name, value) for name, value in values.items()}


def lbfgs_step(state: dict, x, evaluate, cfg: dict, ops=ls.NUMPY_OPS):
    """One L-BFGS step from the flat parameters ``x``: ``(loss at x, new x, new state)``.

    ``evaluate(x) -> (loss, flat gradient)`` calls the objective; ``state`` (torch's keys plus
    ``prev_x``, ``value``, ``grad`` for the optax conventions) is not modified: a new dict
    comes back, so that a caller that refuses the step (a NaN) keeps the old one. The loop is
    torch.optim.LBFGS.step's, line for line, with each convention of ``cfg`` (see the module
    docstring) where optax's differs. ``ops`` (:class:`optimlab.line_search.NumpyOps`) are its
    vector operations; the torch face runs it on tensors with torch's.
    """
    state = dict(state)
    state.setdefault("func_evals", 0)
    state.setdefault("n_iter", 0)
    lr = cfg["learning_rate"]
    max_iter = cfg["max_iter"]
    max_eval = cfg["max_eval"]
    tol_grad = cfg["tolerance_grad"]
    tol_change = cfg["tolerance_change"]
    memory_size = cfg["memory_size"]

    value = state.get("value")
    if cfg["reuse_value"] and value is not None and math.isfinite(value):
        loss, flat_grad = value, state["grad"]
        current_evals = 0
    else:
        loss, flat_grad = evaluate(x)
        current_evals = 1
        state["func_evals"] += 1
    orig_loss = loss

    if tol_grad is not None and ops.abs_max(flat_grad) <= tol_grad:
        return orig_loss, x, state

    d = state.get("d")
    t = state.get("t")
    old_dirs = state.get("old_dirs")
    old_stps = state.get("old_stps")
    ro = state.get("ro")
    H_diag = state.get("H_diag")
    prev_flat_grad = state.get("prev_flat_grad")
    prev_loss = state.get("prev_loss")
    prev_x = state.get("prev_x")
    opt_cond = False

    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        state["n_iter"] += 1

        # the direction: -g on the first iteration, -H g afterwards
        if state["n_iter"] == 1:
            old_dirs, old_stps, ro = [], [], []
            H_diag = 1
            if cfg["first_step"] == "l2" and cfg["scale_init_precond"]:
                H_diag = min(1.0, 1.0 / ops.sqrt(flat_grad.dot(flat_grad)))
            precond = flat_grad * H_diag if H_diag != 1 else flat_grad
            al = None
        else:
            y = flat_grad - prev_flat_grad
            s = d * t if cfg["secant"] == "step" else x - prev_x
            old_dirs, old_stps, ro, H_diag = rule.remember(
                old_dirs,
                old_stps,
                ro,
                H_diag,
                y,
                s,
                memory_size,
                cfg["min_curvature"],
                cfg["scale_init_precond"],
            )
            sign = -1 if cfg["learning_rate_role"] == "step" else 1
            precond, al = rule.two_loop(
                sign * flat_grad, old_dirs, old_stps, ro, H_diag, axpy=ops.axpy
            )
            al_state = state.get("al") or [None] * memory_size
            al_state = list(al_state) + [None] * (memory_size - len(al_state))
            al_state[: len(al)] = al
            state["al"] = al_state
        if cfg["learning_rate_role"] == "step":
            d = -flat_grad if al is None else precond
        else:
            d = (-lr) * precond

        prev_flat_grad = flat_grad
        prev_loss = loss
        prev_x = x

        # the initial step
        if cfg["learning_rate_role"] == "step":
            if state["n_iter"] == 1 and cfg["first_step"] == "l1":
                t = min(1.0, 1.0 / ops.abs_sum(flat_grad)) * lr
            else:
                t = lr
        elif cfg["initial_guess_strategy"] == "keep" and t is not None:
            t = t
        else:
            t = 1.0

        gtd = flat_grad.dot(d)
        if tol_change is not None and gtd > -tol_change:
            break

        ls_func_evals = 0
        search = cfg["line_search"]
        if search is not None:
            x_init = x

            def along(step, x_init=x_init, d=d):
                return evaluate(ops.axpy(x_init, step, d))

            budget = cfg["max_linesearch_steps"]
            if budget is None:
                budget = max_eval - current_evals if max_eval is not None else 25
            if search == "strong_wolfe":
                loss, flat_grad, t, ls_func_evals = ls.strong_wolfe(
                    along,
                    t,
                    d,
                    loss,
                    flat_grad,
                    gtd,
                    c1=cfg["slope_rtol"],
                    c2=cfg["curv_rtol"],
                    tolerance_change=cfg["wolfe_tolerance_change"],
                    max_ls=budget,
                    ops=ops,
                )
            else:
                t, loss, flat_grad, ls_func_evals, _, _ = ls.zoom(
                    along,
                    d,
                    loss,
                    flat_grad,
                    stepsize_guess=t,
                    max_linesearch_steps=budget,
                    max_stepsize=cfg["max_learning_rate"],
                    tol=cfg["tol"],
                    increase_factor=cfg["increase_factor"],
                    slope_rtol=cfg["slope_rtol"],
                    curv_rtol=cfg["curv_rtol"],
                    approx_dec_rtol=cfg["approx_dec_rtol"],
                    interval_threshold=cfg["stepsize_precision"],
                )
                state["value"], state["grad"] = loss, flat_grad
            x = ops.axpy(x_init, t, d)
            opt_cond = tol_grad is not None and ops.abs_max(flat_grad) <= tol_grad
        else:
            x = ops.axpy(x, t, d)
            if n_iter != max_iter:
                loss, flat_grad = evaluate(x)
                opt_cond = tol_grad is not None and ops.abs_max(flat_grad) <= tol_grad
                ls_func_evals = 1

        current_evals += ls_func_evals
        state["func_evals"] += ls_func_evals

        if n_iter == max_iter:
            break
        if max_eval is not None and current_evals >= max_eval:
            break
        if opt_cond:
            break
        if tol_change is not None:
            if ops.abs_max(d * t) <= tol_change:
                break
            if abs(loss - prev_loss) < tol_change:
                break

    state.update(
        d=d,
        t=t,
        old_dirs=old_dirs,
        old_stps=old_stps,
        ro=ro,
        H_diag=H_diag,
        prev_flat_grad=prev_flat_grad,
        prev_loss=prev_loss,
    )
    if cfg["secant"] == "difference":
        state["prev_x"] = prev_x
    return orig_loss, x, state


_UNSET = object()


class LBFGS:
    """L-BFGS with a closure on NumPy arrays, torch's or optax's iteration by ``preset``.

    ``step(closure, params)`` runs one step (up to ``max_iter`` iterations, each a two-loop
    direction d = -H g and a step x = x + t d, see the module docstring) and returns the loss
    at the parameters it started from; ``minimize(closure, params, steps)`` runs ``steps``
    steps and returns their losses. ``closure(params) -> (loss, grads)``: ``params`` is the
    list being optimized (holding the trial point while a line search runs), ``grads`` one
    array per parameter. Parameters are float32 or float64 arrays of one dtype, updated in
    place.

    Arguments (defaults from the preset; ``None`` switches a stopping rule off, but
    ``max_eval=None`` is torch's max_iter * 5 // 4 under the torch and keras presets):
    ``learning_rate`` (torch ``lr``), ``memory_size`` (torch ``history_size``), ``max_iter``,
    ``max_eval``, ``tolerance_grad``, ``tolerance_change``, ``line_search`` (None,
    ``"strong_wolfe"`` or ``"zoom"``), ``max_linesearch_steps`` (None: torch's budget,
    ``max_eval`` less the evaluations made), ``slope_rtol`` and ``curv_rtol`` (c1 and c2 of the
    Wolfe conditions), ``wolfe_tolerance_change`` (torch's fixed 1e-9 bracket length),
    ``initial_guess_strategy``, ``max_learning_rate``, ``increase_factor``,
    ``approx_dec_rtol``, ``stepsize_precision``, ``tol`` (optax's zoom; ``curv_rtol=inf``
    switches the curvature test off, as in optax), ``scale_init_precond``, and the conventions
    ``learning_rate_role``, ``first_step``, ``min_curvature``, ``secant``, ``reuse_value``,
    ``loss_dtype``; ``nan_policy="raise"`` refuses a closure that returns a
    NaN or infinite loss or gradient (the parameters and the state are left as they were).

    Sources: torch/optim/lbfgs.py (torch 2.13); optax/_src/alias.py ``lbfgs``,
    transform.py ``scale_by_lbfgs`` and linesearch.py ``scale_by_zoom_linesearch`` (optax
    0.2.8); Nocedal & Wright, "Numerical Optimization", Algorithms 3.5, 3.6, 7.4 and 7.5.
    """

    def __init__(self, preset: str = "keras", **options: Any) -> None:
        preset = check_choice("preset", preset, presets.PRESETS)
        values = dict(presets.DEFAULTS["LBFGS"][preset])
        unknown = set(options) - set(values)
        if unknown:
            raise TypeError(
                f"LBFGS got unexpected keyword arguments {sorted(unknown)}; valid ones: "
                f"{', '.join(sorted(values))}"
            )
        values.update(options)
        cfg = validate_config(values)
        if cfg["max_eval"] is None and preset != "optax":
            # torch's meaning of None: max_iter * 5 // 4 (optax's preset: no limit)
            cfg["max_eval"] = cfg["max_iter"] * 5 // 4
        self.preset = preset
        self.config = cfg
        self.state: dict = {}
        self._layout: tuple | None = None

    def __getattr__(self, name: str) -> Any:
        config = self.__dict__.get("config", {})
        if name in config:
            return config[name]
        raise AttributeError(f"'LBFGS' object has no attribute {name!r}")

    def _check_params(self, params) -> tuple:
        if isinstance(params, np.ndarray):
            params = [params]
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                f"params must be a list of float NumPy arrays, got {show(params)}"
            ) from None
        if not params:
            raise ValueError("params must be a non-empty list of float NumPy arrays, got []")
        for i, p in enumerate(params):
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                raise TypeError(
                    f"params[{i}] must be a float32 or float64 NumPy array, got {show(p)}"
                )
            if not p.flags.writeable:
                raise ValueError(f"params[{i}] must be writeable (it is updated in place)")
        dtypes = {p.dtype for p in params}
        if len(dtypes) > 1:
            raise TypeError(
                f"params must share one dtype (L-BFGS works on one flat vector), got "
                f"{sorted(str(d) for d in dtypes)}"
            )
        layout = tuple((p.shape, p.dtype.str) for p in params)
        if self._layout is not None and layout != self._layout:
            raise ValueError(
                f"params must keep the shapes and dtype of the first step {self._layout}, "
                f"got {layout}"
            )
        return params, layout

    def step(self, closure, params) -> float:
        """One L-BFGS step (``max_iter`` iterations at most); returns the loss at the start.

        A refused call (a non-callable closure, bad params, a closure that raises or returns
        something other than a finite loss and one finite array per parameter of its shape)
        leaves the parameters and the state as they were.
        """
        if not callable(closure):
            raise TypeError(
                f"closure must be a callable closure(params) -> (loss, grads), got {show(closure)}"
            )
        params, layout = self._check_params(params)
        dtype = params[0].dtype
        sizes = [p.size for p in params]
        x0 = np.concatenate([p.ravel() for p in params]).astype(dtype, copy=False)
        cfg = self.config
        raise_nan = cfg["nan_policy"] == "raise"

        def write(x):
            offset = 0
            for p, n in zip(params, sizes, strict=True):
                p[...] = x[offset : offset + n].reshape(p.shape)
                offset += n

        def evaluate(x):
            write(x)
            out = closure(params)
            try:
                loss, grads = out
                grads = list(grads)
            except (TypeError, ValueError):
                raise TypeError(f"closure must return (loss, grads), got {show(out)}") from None
            if len(grads) != len(params):
                raise ValueError(
                    f"closure must return one gradient per parameter ({len(params)}), "
                    f"got {len(grads)}"
                )
            flat = []
            for i, (g, p) in enumerate(zip(grads, params, strict=True)):
                g = np.asarray(g)
                if g.shape != p.shape or g.dtype.kind not in "fiu":
                    raise ValueError(
                        f"closure's grads[{i}] must be a real array of shape {p.shape}, "
                        f"got {show(g)}"
                    )
                flat.append(g.astype(dtype, copy=False).ravel())
            flat = np.concatenate(flat)
            try:
                value = float(loss)
            except (TypeError, ValueError):
                raise TypeError(f"closure's loss must be a real number, got {show(loss)}") from None
            if raise_nan and not (math.isfinite(value) and np.isfinite(flat).all()):
                what = f"loss {value!r}" if not math.isfinite(value) else "a non-finite gradient"
                raise ValueError(
                    f"closure returned {what} at the trial point; the loss and gradients must "
                    "be finite (nan_policy='raise'; 'propagate' lets them through)"
                )
            if cfg["loss_dtype"] == "params":
                value = dtype.type(loss)
            return value, flat

        try:
            loss, x, state = lbfgs_step(copy.copy(self.state), x0, evaluate, cfg)
        except BaseException:
            write(x0)
            raise
        write(x)
        self.state = state
        self._layout = layout
        return loss

    def minimize(self, closure, params, steps: int = 1) -> list:
        """``steps`` calls of :meth:`step`; the loss at the start of each."""
        steps = check_int("steps", steps, 1, MAX_COUNT)
        return [self.step(closure, params) for _ in range(steps)]

    def state_dict(self) -> dict:
        """A deep copy of the state (torch's keys, NumPy values) and of the parameter layout
        it belongs to; :meth:`load_state_dict` takes it back, and the steps continue bit for
        bit."""
        return {"state": copy.deepcopy(self.state), "layout": self._layout}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take a :meth:`state_dict`; one that is not one (other keys, a memory longer than
        ``memory_size``) is refused and nothing changes."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "layout"}:
            raise ValueError(
                "state_dict must be a dict with keys 'layout' and 'state' (from "
                f"LBFGS.state_dict()), got {show(state_dict)}"
            )
        state = state_dict["state"]
        known = set(TORCH_STATE_KEYS) | {"prev_x", "value", "grad"}
        if not isinstance(state, dict) or not set(state) <= known:
            raise ValueError(
                f"state_dict['state'] must hold only {sorted(known)}, got {show(state)}"
            )
        memory = len(state.get("old_dirs") or [])
        if memory > self.config["memory_size"]:
            raise ValueError(
                f"state_dict holds {memory} pairs, more than memory_size="
                f"{self.config['memory_size']}"
            )
        self.state = copy.deepcopy(state)
        self._layout = state_dict["layout"]

    def reset(self) -> None:
        """Forget the memory and counters (a new problem)."""
        self.state = {}
        self._layout = None
