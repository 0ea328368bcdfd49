"""The fused engine: one compiled, in-place pass over memory per parameter and step.

For each element i, in registers, with no temporary arrays::

    g = g[i] / loss_scale                      (if loss scaling)
    g = g * gscale                             (gscale = -1 for maximize, times the clip scale)
    g = min(max(g, -clipvalue), clipvalue)     (if clipvalue)
    g = g + wd * p[i]                          (L2 weight decay)
    p = p[i] - p[i] * (wd * lr)                (decoupled weight decay, unless the rule
                                               takes it: DECAY, the decay after the scalars)
    p, s1[i], s2[i], ... = rule.update(p, g, s1[i], s2[i], ..., *scalars)
    ema[i] = mu * ema[i] + (1 - mu) * p        (if an EMA of the weights is kept)

``rule.update`` is the very function the reference engine runs on whole arrays: numba compiles
it for single numbers. All scalars arrive in the parameter's dtype and the rules have no float
literals, so a float32 step computes in float32 throughout, like NumPy does, and both engines
give bit-identical parameters and state (the norm used by norm clipping is summed in a different
order, which can change its last bit).

Kernels are compiled on first use (``cache=True`` keeps them on disk for the next process);
importing optimlab compiles nothing. Arrays at or above ``PARALLEL_THRESHOLD`` elements run on
all numba threads (``prange``), smaller ones serially, which costs about 1.5 microseconds.

The engine knows no optimizer: it runs any rule for which ``elementwise(rule)`` holds (``SLOTS``
and ``update``, no ``TENSOR``). The element function and its two loops are generated from
``rule.SLOTS`` alone, how many slots and which of them optional: ``s_k[i]`` is read and written
back for each slot, and an optional slot that is off arrives as None, the rule sees ``g`` in its
place and nothing is written back (numba compiles the other branch away). ``loop_source(rule)``
shows the text; it is written to a file of a cache directory (this package's
``__pycache__/fused_loops``; else ``NUMBA_CACHE_DIR`` or the user's cache) named by the rule and
a key, a digest of the text, this module and the rule's file, and run as a module of its own,
so that numba caches the loops next to that file as it does any module's, and a new process
loads them instead of compiling: a rule's first step in a new process takes about 5 ms, as
with the former hand-written loops (plus numba's start-up, about 0.25 s, once per process),
against 0.3 to 1 s where it compiles.

Why generated source, and not:

* one loop taking the rule's compiled ``update`` as an argument: numba types a dispatcher
  argument by the dispatcher object itself, so its cache misses in every new process (and grows
  by an entry each time), and typing that argument costs about 5 microseconds per call (0.5
  instead of 5 on two elements, numba 0.68), more than the whole step of a small ``Params``;
* closures made by a factory: numba keys a cached function by its file, name and first line,
  the same for every closure of one factory, so two rules would load each other's code;
* a key-less file, or loops cached against this module: numba checks a cached function against
  its own file only, so loops compiled with the rule inside would keep an edited rule's old
  arithmetic (as the former hand-written loops of this module did).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import inspect
import marshal
import math
import os
import sys
import tempfile
import types

import numpy as np
from numba import njit, prange

PARALLEL_THRESHOLD = 32768
_OPTS = dict(error_model="numpy", boundscheck=False, nogil=True, cache=True)


# -- the per-element pipeline -------------------------------------------------------------------


@njit(**_OPTS)
def _prepare_args(gi, pi, loss_scale, gscale, clipvalue, wd, wdlr, factor):
    # An option that is off arrives as None: numba then compiles this function without its
    # branch (a runtime flag per option would keep the loop from vectorizing).
    if loss_scale is not None:
        gi = gi / loss_scale
    if gscale is not None:
        gi = gi * gscale
    if clipvalue is not None:
        if gi > clipvalue:
            gi = clipvalue
        elif gi < -clipvalue:
            gi = -clipvalue
    if wd is not None:
        gi = gi + wd * pi
    if wdlr is not None:
        pi = pi - pi * wdlr
    if factor is not None:
        pi = pi * factor
    return gi, pi


@njit(**_OPTS)
def _prepare(gi, pi, pipe):
    """The gradient and parameter the rule sees: loss scale, sign and clipping, weight decay."""
    return _prepare_args(gi, pi, pipe[0], pipe[1], pipe[2], pipe[3], pipe[4], pipe[7])


@njit(**_OPTS)
def _average(i, ema, pi, pipe):
    if ema is not None:
        ema[i] = pipe[5] * ema[i] + pipe[6] * pi


# -- the loops of a rule, generated from its SLOTS ---------------------------------------------

_TEMPLATE = """

@njit(**_OPTS)
def element(i, p, g, {args}, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
{reads}    pi, {values} = update(pi, gi, {values}, *s)
    p[i] = pi
{writes}    _average(i, ema, pi, pipe)


@njit(parallel=True, **_OPTS)
def parallel(p, g, {args}, ema, s, pipe):
    for i in prange(p.size):
        element(i, p, g, {args}, ema, s, pipe)


@njit(**_OPTS)
def serial(p, g, {args}, ema, s, pipe):
    for i in range(p.size):
        element(i, p, g, {args}, ema, s, pipe)
"""

#: rule -> (parallel loop, serial loop), generated on the rule's first fused step
_LOOPS: dict = {}


def elementwise(rule) -> bool:
    """Whether the fused engine can run ``rule``: an elementwise rule, i.e. one that declares
    ``SLOTS`` and an ``update(p, g, *slots, *scalars) -> (p, *slots)`` and is not marked
    ``TENSOR = True`` (Muon, Adafactor, Lamb and L-BFGS work on whole arrays)."""
    return (
        not getattr(rule, "TENSOR", False)
        and isinstance(getattr(rule, "SLOTS", None), tuple)
        and callable(getattr(rule, "update", None))
    )


def loop(rule, size: int):
    """The compiled loop of ``rule`` for an array of ``size`` elements: the parallel one at or
    above ``PARALLEL_THRESHOLD``, the serial one below (generated on first use)."""
    try:
        loops = _LOOPS[rule]
    except KeyError:
        loops = _make_loops(rule)
    return loops[0] if size >= PARALLEL_THRESHOLD else loops[1]


def loop_source(rule) -> str:
    """The Python source of ``rule``'s element function and loops, as written to disk: for each
    slot ``k`` of ``rule.SLOTS``, ``s{k}[i]`` is read and written back; an optional slot that is
    off arrives as None, the rule sees ``g`` in its place and nothing is written back."""
    return _generate(rule)[0]


_KINDS = ("required", "optional")


def _generate(rule) -> tuple[str, str]:
    """``loop_source`` and its key, a digest of what the compiled loops contain: the text,
    this module, the rule's source file and those of the helpers its update calls (numba
    checks a cache against its own function's file only, so a rule or helper edited since
    would otherwise load the old machine code)."""
    if not elementwise(rule):
        raise TypeError(
            f"rule={_name(rule)!r} is not an elementwise rule: the fused "
            "engine needs SLOTS and update(p, g, *slots, *scalars), and no TENSOR = True"
        )
    for entry in rule.SLOTS:
        if not (isinstance(entry, tuple) and len(entry) == 2 and entry[1] in _KINDS):
            raise ValueError(
                f"rule {_name(rule)!r} declares the slot {entry!r}; each entry of SLOTS "
                f"must be (name, kind) with kind one of {_KINDS}"
            )
    if not rule.SLOTS:
        raise ValueError(f"rule {_name(rule)!r} has SLOTS=(); the fused engine needs a slot")
    reads, writes = [], []
    for k, (_, kind) in enumerate(rule.SLOTS):
        if kind == "required":
            reads.append(f"    v{k} = s{k}[i]\n")
            writes.append(f"    s{k}[i] = v{k}\n")
        else:
            reads.append(f"    v{k} = gi if s{k} is None else s{k}[i]\n")
            writes.append(f"    if s{k} is not None:\n        s{k}[i] = v{k}\n")
    body = _TEMPLATE.format(
        args=", ".join(f"s{k}" for k in range(len(rule.SLOTS))),
        values=", ".join(f"v{k}" for k in range(len(rule.SLOTS))),
        reads="".join(reads),
        writes="".join(writes),
    )
    key = _key(body, rule)
    header = "".join(
        [
            f"# Generated by optimlab.engines.fused from the SLOTS of {_name(rule)}.\n",
            *(f"#   s{k}: {name!r} ({kind})\n" for k, (name, kind) in enumerate(rule.SLOTS)),
            f"# Key {key}: a digest of the rule's file, the files of the helpers its update\n",
            "# calls, engines/fused.py and the text below.\n",
            "# A change to any of them makes a new file, and numba a new cache. Do not edit.\n",
        ]
    )
    return header + body, key


def _key(text: str, rule, extra: bytes = b"") -> str:
    """The key of generated loops (16 hex digits): a SHA-256 digest of their ``text``, this
    module, ``extra`` (the generating module's own source, for generators other than this
    one), the rule's source file (or its update's code where it has none) and the files of
    the helpers its update calls."""
    digest = hashlib.sha256(text.encode())
    digest.update(_own_source())
    digest.update(extra)
    source = _source_file(rule.update)
    if source is not None:
        with open(source, "rb") as f:
            digest.update(f.read())
    else:
        digest.update(marshal.dumps(rule.update.__code__))
    for helper in _helper_files(rule.update):
        with open(helper, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def _load_generated(name: str, text: str, path: str | None, namespace: dict) -> types.ModuleType:
    """Run generated loop source ``text`` as a module of its own, ``name``, whose globals start
    as ``namespace``; ``path`` is the file it was written to (:func:`_write`; None where it
    could not be, and then the text runs from memory). The module goes into ``sys.modules``:
    numba finds the loops' globals there when it loads them from its cache."""
    module = types.ModuleType(name)
    module.__file__ = path
    module.__dict__.update(namespace)
    sys.modules[name] = module
    exec(compile(text, path or f"<{name}>", "exec"), module.__dict__)
    return module


def _name(rule) -> str:
    """A rule module's name (or a rule object's)."""
    return getattr(rule, "__name__", None) or type(rule).__name__


@functools.cache
def _own_source() -> bytes:
    try:
        with open(__file__, "rb") as f:
            return f.read()
    except OSError:  # e.g. imported from a zip: the code the loops call
        return b"".join(
            marshal.dumps(f.py_func.__code__) for f in (_prepare_args, _prepare, _average)
        )


def _helper_files(function) -> list[str]:
    """The source files, other than ``function``'s own, of the Python functions it calls by a
    global name (a rule's helpers, e.g. ``where`` of :mod:`optimlab.rules._scalar`): numba
    compiles them into the loops as well, so an edit to one must change the key too."""
    own = _source_file(function)
    files = set()
    for name in function.__code__.co_names:
        helper = function.__globals__.get(name)
        if isinstance(helper, types.FunctionType):
            path = _source_file(helper)
            if path is not None and path != own:
                files.add(path)
    return sorted(files)


def _source_file(function):
    try:
        path = inspect.getsourcefile(function)
    except TypeError:
        return None
    return path if path and os.path.isfile(path) else None


def _make_loops(rule):
    """Write ``rule``'s loops to a generated module (once: its name carries its key), run it,
    and remember its two loops. numba caches them next to that file like any module's."""
    text, key = _generate(rule)
    stem = "".join(c if c.isalnum() else "_" for c in _name(rule))
    name = f"{stem}_{key}"
    # (a rule with no source file cannot be cached by numba: then nothing is)
    path = _write(stem, key, text) if _source_file(rule.update) is not None else None
    opts = _OPTS if path is not None else dict(_OPTS, cache=False)
    namespace = dict(
        njit=njit,
        prange=prange,
        _OPTS=opts,
        _prepare=_prepare,
        _average=_average,
        update=_compiled_update(rule, opts),
    )
    module = _load_generated(f"optimlab_fused_loops_{name}", text, path, namespace)
    loops = _LOOPS[rule] = (module.parallel, module.serial)
    return loops


_UPDATES: dict = {}


def _compiled_update(rule, opts):
    """``rule.update`` compiled by numba for single numbers (one dispatcher per rule)."""
    compiled = _UPDATES.get(rule)
    if compiled is None:
        compiled = _UPDATES[rule] = njit(**opts)(rule.update)
    return compiled


def _loop_directories():
    """Where generated loops may go, in order: this package's ``__pycache__`` (where numba
    keeps the other kernels' caches), ``NUMBA_CACHE_DIR``, the user's cache directory. (Not a
    shared temporary directory: numba would load machine code that another user put there.)"""
    yield os.path.join(os.path.dirname(__file__), "__pycache__", "fused_loops")
    if os.environ.get("NUMBA_CACHE_DIR"):
        yield os.path.join(os.environ["NUMBA_CACHE_DIR"], "optimlab_fused_loops")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(base, "optimlab", "fused_loops")


def _write(stem: str, key: str, text: str) -> str | None:
    """The path of the file ``{stem}_{key}.txt`` holding ``text`` in the first writable loop
    directory (written atomically unless already there, so that its numba cache stays valid),
    or None (then the loops are compiled in every process)."""
    filename = f"{stem}_{key}.txt"  # (not .py: setuptools would package it from a checkout)
    for n, directory in enumerate(_loop_directories()):
        path = os.path.join(directory, filename)
        try:
            with open(path) as f:
                if f.read() == text:
                    return path
        except OSError:
            pass
        temporary = None
        try:
            os.makedirs(directory, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(temporary, path)
        except OSError:
            if temporary is not None and os.path.exists(temporary):
                os.remove(temporary)
            continue
        if n == 0:  # only in this package's own directory: other versions may share the rest
            _forget_other_keys(directory, stem, key)
        return path
    return None


def _forget_other_keys(directory: str, stem: str, key: str) -> None:
    """Remove the loops of ``stem`` with another key (an older rule or engine) and their numba
    caches: each edit would otherwise leave megabytes behind. A process still running the old
    code keeps its loops (numba read the file's stamp when it made them)."""
    other = stem + "_" + "?" * len(key)
    stale = glob.glob(os.path.join(directory, other + ".txt"))
    stale += glob.glob(os.path.join(directory, "__pycache__", other + ".*"))
    for path in stale:
        if key not in os.path.basename(path):
            with contextlib.suppress(OSError):
                os.remove(path)


# -- reductions ---------------------------------------------------------------------------------


@njit(parallel=True, **_OPTS)
def _sum_of_squares(g, loss_scale):
    total = 0.0
    for i in prange(g.size):
        x = np.float64(g[i]) / loss_scale
        total += x * x
    return total


_REDUCE_OPTS = dict(_OPTS, fastmath={"reassoc"})


# sum(g * 0): 0 when every g is finite, NaN otherwise (Inf * 0 and NaN * 0 are NaN). Only
# reassociation is allowed (so the loop vectorizes): without "no signed zeros" LLVM may not
# factor the sum into sum(g) * 0, which would overflow (tests/test_fused.py checks). Two defs:
# numba keys its cache by the function's name and line, not by ``parallel``, so one function
# compiled both ways would load whichever was compiled first for both.
@njit(parallel=True, **_REDUCE_OPTS)
def _zero_sum_parallel(g):
    total = g.dtype.type(0)
    zero = g.dtype.type(0)
    for i in prange(g.size):
        total += g[i] * zero
    return total


@njit(**_REDUCE_OPTS)
def _zero_sum_serial(g):
    total = g.dtype.type(0)
    zero = g.dtype.type(0)
    for i in range(g.size):
        total += g[i] * zero
    return total


def all_finite(g: np.ndarray, loss_scale: float | None = None) -> bool:
    """Whether every ``g / loss_scale`` (in ``g``'s dtype) is finite: one vectorized read of
    ``g``, parallel for large arrays."""
    g = g.reshape(-1)
    if loss_scale is not None:  # g / s can overflow where g does not: count exactly
        return count_non_finite(g, loss_scale) == 0
    kernel = _zero_sum_parallel if g.size >= PARALLEL_THRESHOLD else _zero_sum_serial
    return kernel(g) == 0


@njit(parallel=True, **_OPTS)
def _count_non_finite(g, loss_scale):
    count = 0
    for i in prange(g.size):
        if not np.isfinite(g[i] / loss_scale):
            count += 1
    return count


def sum_of_squares(g: np.ndarray, loss_scale: float = 1.0) -> float:
    """sum((g / loss_scale)^2) in float64, one parallel read of ``g``."""
    return float(_sum_of_squares(g.reshape(-1), float(loss_scale)))


def count_non_finite(g: np.ndarray, loss_scale: float = 1.0) -> int:
    """The number of NaN/Inf in ``g / loss_scale`` (computed in ``g``'s dtype): one parallel
    read of ``g``."""
    return int(_count_non_finite(g.reshape(-1), g.dtype.type(loss_scale)))


def l2_norm(arrays, loss_scale: float = 1.0) -> float:
    """sqrt of the summed squares of all ``arrays``, as ``clipping.l2_norm`` (including its
    rescaled second pass where the squares overflow)."""
    total = sum(sum_of_squares(a, loss_scale) for a in arrays)
    if math.isinf(total):
        from ..clipping import scaled_l2_norm

        return scaled_l2_norm(arrays, loss_scale)
    return math.sqrt(total)


# -- the engine ---------------------------------------------------------------------------------

NO_PIPELINE = (None, None, None, None, None, 0.0, 1.0, None)


def pipeline(
    *,
    loss_scale=None,
    gscale=1.0,
    clipvalue=None,
    l2=None,
    decoupled_wdlr=None,
    ema_momentum=None,
    decay_factor=None,
):
    """The pipeline tuple of the kernels: (loss scale, gradient scale, clip value, L2 weight
    decay, decoupled wd * lr, EMA momentum, 1 - EMA momentum, decay factor), None for what is
    off; Python floats (``apply`` casts them to the parameter's dtype).

    Decoupled weight decay has two forms: ``p = p - p * (lr * wd)`` (``decoupled_wdlr``: Keras,
    the reference engine) and ``p = p * (1 - lr * wd)`` (``decay_factor``: PyTorch's
    ``param.mul_(1 - lr * wd)``, with the factor rounded to the parameter's dtype)."""

    def opt(x):
        return None if x is None else float(x)

    return (
        opt(loss_scale),
        None if gscale == 1.0 else float(gscale),
        opt(clipvalue),
        opt(l2),
        opt(decoupled_wdlr),
        0.0 if ema_momentum is None else float(ema_momentum),
        1.0 if ema_momentum is None else 1.0 - float(ema_momentum),
        opt(decay_factor),
    )


def supports(*arrays) -> bool:
    """Whether the fused engine can run on these arrays: float32/float64, C-contiguous, writable
    (the gradient only needs to be readable)."""
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64):
        return False
    return all(
        isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous for a in arrays
    )


def _cast(values, dtype):
    """Floats to numpy scalars of ``dtype`` (what keeps a float32 kernel in float32)."""
    cast = dtype.type
    return tuple([v if v is None or v.__class__ is bool else cast(v) for v in values])


def apply(rule, p, g, slots, scalars, pipe=NO_PIPELINE, ema=None) -> None:
    """One fused step of ``rule`` on ``p`` (in place), with its ``slots`` (None where off;
    narrow state, ``state_dtype="int8"``, ``"int4"`` or ``"bfloat16"``, runs the loops of
    :mod:`optimlab.quantization.kernels`)."""
    if any(s is not None and not isinstance(s, np.ndarray) for s in slots):
        from ..quantization import kernels

        kernels.apply(rule, p, g, slots, scalars, pipe, ema)
        return
    dtype = p.dtype
    if p.ndim != 1:
        p, g = p.reshape(-1), g.reshape(-1)
        slots = [None if s is None else s.reshape(-1) for s in slots]
        ema = None if ema is None else ema.reshape(-1)
    elif g.ndim != 1:
        g = g.reshape(-1)
    try:
        loops = _LOOPS[rule]
    except KeyError:  # the rule's first fused step in this process
        loops = _make_loops(rule)
    (loops[0] if p.size >= PARALLEL_THRESHOLD else loops[1])(
        p,
        g,
        *slots,
        ema,
        _cast(scalars, dtype),
        _cast_pipeline(pipe, dtype),
    )


class Kernel:
    """``apply`` for arrays that stay the same from step to step (the ranges of a ``Params``):
    the loop is chosen once, and after the first call the compiled machine code is called
    directly, without numba's type dispatch (about 5 microseconds less per call).

    ``kernel(scalars, pipe)`` takes Python floats: numba converts them to the parameter's dtype
    as ``_cast`` does. The arrays must not be swapped for others afterwards."""

    def __init__(self, rule, p, g, slots, ema=None):
        self.dtype = p.dtype
        flat = [a if a is None else a.reshape(-1) for a in (p, g, *slots, ema)]
        self.arrays = tuple(flat)
        self.loop = loop(rule, p.size)
        self.entry = None

    def __call__(self, scalars, pipe) -> None:
        if self.entry is not None:
            self.entry(*self.arrays, scalars, pipe)
            return
        args = (*self.arrays, _cast(scalars, self.dtype), _cast_pipeline(pipe, self.dtype))
        self.loop(*args)
        self.entry = compiled_entry(self.loop, args)


class FiniteCheck:
    """``all_finite`` for one array that stays the same (a ``Params`` gradient buffer), called
    without type dispatch after the first call."""

    def __init__(self, g):
        self.g = g.reshape(-1)
        self.kernel = _zero_sum_parallel if g.size >= PARALLEL_THRESHOLD else _zero_sum_serial
        self.kernel(self.g)  # compile (or load) for this type
        self.entry = compiled_entry(self.kernel, (self.g,))

    def __call__(self) -> bool:
        return self.entry(self.g) == 0


def compiled_entry(dispatcher, args):
    """The compiled function of ``dispatcher`` for the types of ``args`` (already compiled):
    calling it skips the type dispatch, so later arguments must have the same types."""
    signature = tuple(dispatcher.typeof_pyval(a) for a in args)
    return dispatcher.overloads[signature].entry_point


_PIPELINES: dict = {}


def _cast_pipeline(pipe, dtype):
    """``_cast`` for the pipeline tuple, which rarely changes between steps: memoized."""
    key = (pipe, dtype)
    cast = _PIPELINES.get(key)
    if cast is None:
        if len(_PIPELINES) > 256:
            _PIPELINES.clear()
        cast = _PIPELINES[key] = _cast(pipe, dtype)
    return cast
