"""optimlab.torch against torch.optim (2.13), option by option, engine by engine.

Each case trains the same parameters (a 0-d scalar, a vector, a matrix, a 3-d tensor, and in
some cases a 201x200 matrix that takes the parallel kernel) with the same seeded random
gradients (of mixed magnitudes) for 200 steps, the learning rate cut to 0.3x at step 120
(``group["lr"] = ...``), with torch.optim and with optimlab.torch, ``engine="auto"`` (the fused
numba kernel on these CPU tensors) and ``engine="torch"`` (torch operations). At several steps
every parameter AND every state tensor is compared: deviation = max |ours - torch| over the
tensor's largest |torch| in the run (see ``compare``)
must stay within 1e-9 in float64 and 1e-5 in float32; step counts must be equal; state keys
(and their order), dtypes and shapes, and the state_dict's structure and param_groups must be
identical. Lion (not in torch.optim) is checked against a hand-written torch reference;
Adafactor and Muon run on their one engine (Muon on matrices only).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import pytest

torch = pytest.importorskip("torch")

import optimlab.torch as ot  # noqa: E402

STEPS = 200
LR_CHANGE_AT = 120
LR_FACTOR = 0.3
CHECKPOINTS = (0, 1, 2, 3, 10, 50, LR_CHANGE_AT, STEPS)
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-5}
#: (shape, gradient scale): a 0-d scalar, and gradients from 1e-4 (where eps matters) to 10
SHAPES = (((), 1.0), ((7,), 1e-4), ((4, 6), 10.0), ((2, 3, 5), 1.0))
#: >= PARALLEL_THRESHOLD (32768) elements: the parallel fused loop
BIG_SHAPE = ((201, 200), 1.0)
#: an optimizer of matrices only (Muon): a row, a tall, a wide and a square matrix
MATRIX_SHAPES = (((1, 7), 1.0), ((7, 3), 1e-4), ((4, 6), 10.0), ((16, 16), 1.0))

pytestmark = pytest.mark.conformance


class ReferenceLion(torch.optim.Optimizer):
    """Lion written out with torch operations, term for term::

    p = p * (1 - lr * wd);  c = b1 * m + (1 - b1) * g;  p = p - lr * sign(c)
    m = b2 * m + (1 - b2) * g                       (g = -g first with maximize)
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m = state["exp_avg"]
                if wd != 0:
                    p.copy_(p * (1 - lr * wd))
                c = b1 * m + (1 - b1) * g
                p.copy_(p - lr * torch.sign(c))
                m.copy_(b2 * m + (1 - b2) * g)


def reference_class(name):
    return ReferenceLion if name == "Lion" else getattr(torch.optim, name)


@dataclass(frozen=True)
class Case:
    optimizer: str
    options: tuple
    big: bool = False

    @property
    def kwargs(self) -> dict:
        return dict(self.options)

    @property
    def label(self) -> str:
        def fmt(v):
            return "/".join(map(str, v)) if isinstance(v, tuple) else str(v)

        return ",".join(f"{k}={fmt(v)}" for k, v in self.options) or "defaults"

    @property
    def id(self) -> str:
        return f"{self.optimizer}[{self.label}]" + ("-big" if self.big else "")

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode())

    @property
    def shapes(self):
        if getattr(getattr(ot, self.optimizer), "matrices_only", False):
            return MATRIX_SHAPES
        return SHAPES + (BIG_SHAPE,) if self.big else SHAPES


def case(optimizer, big=False, **options):
    return Case(optimizer, tuple(options.items()), big)


CASES = [
    # SGD: momentum, dampening, nesterov, weight_decay, maximize
    case("SGD", big=True, lr=0.05),
    case("SGD", lr=0.05, momentum=0.9, dampening=0.3),
    case("SGD", big=True, lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.1),
    case("SGD", lr=0.02, momentum=0.5, weight_decay=0.05, maximize=True),
    case("SGD", lr=0.03, weight_decay=0.2, maximize=True),
    # Adagrad: lr_decay, weight_decay, initial_accumulator_value, eps, maximize
    case("Adagrad", big=True, lr=0.1),
    case("Adagrad", lr=0.1, lr_decay=0.01, weight_decay=0.1),
    case("Adagrad", lr=0.05, initial_accumulator_value=0.5, eps=1e-3, maximize=True),
    # RMSprop: alpha, momentum, centered, weight_decay, maximize
    case("RMSprop", big=True, lr=0.01),
    case("RMSprop", lr=0.01, alpha=0.9, momentum=0.8),
    case("RMSprop", lr=0.01, centered=True, weight_decay=0.1, eps=1e-6),
    case("RMSprop", big=True, lr=0.005, alpha=0.95, momentum=0.5, centered=True, maximize=True),
    # Adam: amsgrad, weight_decay (L2 and decoupled), maximize, betas, eps
    case("Adam", big=True, lr=0.01),
    case("Adam", lr=0.01, betas=(0.8, 0.99), amsgrad=True, eps=1e-6),
    case("Adam", lr=0.01, weight_decay=0.1, maximize=True),
    case("Adam", lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True),
    # AdamW
    case("AdamW", big=True, lr=0.01),
    case("AdamW", lr=0.01, weight_decay=0.3, amsgrad=True, maximize=True),
    case("AdamW", lr=0.01, weight_decay=0.0, betas=(0.5, 0.9)),
    # NAdam: momentum_decay, weight_decay (L2 and decoupled), maximize
    case("NAdam", big=True, lr=0.01),
    case("NAdam", lr=0.01, momentum_decay=0.05, betas=(0.95, 0.99)),
    case("NAdam", lr=0.01, weight_decay=0.1, maximize=True),
    case("NAdam", lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, eps=1e-6),
    # Adamax: weight_decay, maximize
    case("Adamax", big=True, lr=0.01),
    case("Adamax", lr=0.01, weight_decay=0.1, betas=(0.8, 0.95)),
    case("Adamax", lr=0.01, maximize=True, eps=1e-4),
    # Adadelta: rho, weight_decay, maximize
    case("Adadelta", big=True),
    case("Adadelta", lr=0.5, rho=0.5, weight_decay=0.1),
    case("Adadelta", lr=2.0, maximize=True, eps=1e-4),
    # RAdam: weight_decay (L2 and decoupled), maximize, betas, eps
    case("RAdam", big=True, lr=0.01),
    case("RAdam", lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
    case("RAdam", lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
    # Rprop: etas, step_sizes (an lr above the largest step: clipped at once), maximize; the lr
    # change at step 120 must change nothing (lr is the initial step size only)
    case("Rprop", big=True, lr=0.01),
    case("Rprop", lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-4, 0.02)),
    case("Rprop", lr=0.01, maximize=True, step_sizes=(1e-8, 1.0)),
    # ASGD: lambd, alpha, t0 (crossed at step 53, before the lr change, and at 150, after
    # it: the averaging starts at t0 + 3), weight_decay, maximize; the state ax compared too
    # (its parallel kernel: tests/test_fused.py's 200,000 elements, fused against reference)
    case("ASGD", lr=0.01, t0=50.0),
    case("ASGD", lr=0.02, lambd=0.05, alpha=0.5, weight_decay=0.1, t0=147.0),
    case("ASGD", lr=0.01, maximize=True, t0=0.0),
    # Lion (hand-written reference): betas, weight_decay, maximize
    case("Lion", big=True, lr=1e-3),
    case("Lion", lr=1e-3, betas=(0.8, 0.9), weight_decay=0.5),
    case("Lion", lr=1e-3, maximize=True),
    # Adafactor: the relative step (lr above 1/sqrt(t)), beta2_decay, both epsilons, d,
    # weight_decay, maximize; a 3-d tensor factored over its last two axes
    case("Adafactor", big=True, lr=0.05),
    case("Adafactor", lr=0.5, beta2_decay=-0.5, eps=(1e-3, 1e-2), weight_decay=0.1),
    case("Adafactor", lr=0.01, d=2.0, maximize=True),
    # Muon (its bfloat16 Newton-Schulz in torch's own ops: the same bits; its options run in
    # test_optim_db.py and tests/torch/test_muon.py)
    case("Muon", lr=0.02, weight_decay=0.3),
]

DTYPES = {"float64": torch.float64, "float32": torch.float32}
ENGINES = ("auto", "torch")
# engine innermost: both engines of a case run next to each other (and share the reference);
# Adafactor's tensor-level rule has one ("auto": NumPy on the tensors' memory)
GRID = [
    (c, d, e)
    for c in CASES
    for d in DTYPES
    for e in ENGINES
    if e in getattr(ot, c.optimizer).engines
]


@dataclass
class Snapshot:
    params: list
    state: dict  # parameter index -> {key: tensor}, for parameters that have a state
    structure: dict | None = None  # {"state": {index: [keys]}, "param_groups": [...]}


def snapshot(opt, params, final=False) -> Snapshot:
    state = {
        i: {k: v.detach().clone() for k, v in opt.state[p].items()}
        for i, p in enumerate(params)
        if p in opt.state
    }
    structure = None
    if final:
        sd = opt.state_dict()
        structure = {
            "state": {i: list(s) for i, s in sd["state"].items()},
            "param_groups": sd["param_groups"],
        }
    return Snapshot([p.detach().clone() for p in params], state, structure)


def trajectory(make, c: Case, dtype) -> dict[int, Snapshot]:
    """Train ``c.shapes`` with the optimizer ``make(params)``; snapshots at CHECKPOINTS."""
    gen = torch.Generator().manual_seed(c.seed)
    params = [
        torch.nn.Parameter(torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype))
        for shape, _ in c.shapes
    ]
    opt = make(params)
    snaps = {0: snapshot(opt, params)}
    for step in range(1, STEPS + 1):
        if step == LR_CHANGE_AT:
            for group in opt.param_groups:
                group["lr"] = group["lr"] * LR_FACTOR
        for p, (shape, scale) in zip(params, c.shapes, strict=True):
            g = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
            p.grad = g.to(dtype)
        opt.step()
        if step in CHECKPOINTS:
            snaps[step] = snapshot(opt, params, final=step == STEPS)
    return snaps


_REFERENCE: dict = {}


def reference(c: Case, dtype) -> dict[int, Snapshot]:
    key = (c.id, dtype)
    if key not in _REFERENCE:
        cls = reference_class(c.optimizer)
        _REFERENCE[key] = trajectory(lambda ps: cls(ps, **c.kwargs), c, dtype)
    return _REFERENCE[key]


def magnitude(t: torch.Tensor) -> float:
    """max |t| (0 for an empty tensor)."""
    if t.is_complex():
        t = torch.view_as_real(t)
    return float(t.double().abs().max()) if t.numel() else 0.0


def deviation(ours: torch.Tensor, theirs: torch.Tensor, scale: float | None = None) -> float:
    """max |ours - theirs| / scale, scale = max |theirs| unless given (absolute where 0)."""
    if ours.is_complex():
        ours, theirs = torch.view_as_real(ours), torch.view_as_real(theirs)
    ours, theirs = ours.double(), theirs.double()
    if ours.numel() == 0:
        return 0.0
    diff = float((ours - theirs).abs().max())
    scale = magnitude(theirs) if scale is None else scale
    return diff / scale if scale > 0 else diff


def compare(ours: dict, theirs: dict, tolerance: float) -> float:
    """Assert ``ours`` matches ``theirs`` at every checkpoint; returns the largest deviation.

    A deviation is relative to the tensor's magnitude over the whole run (its largest |value|
    at any checkpoint): a 0-d parameter that passes near zero at one checkpoint (Adadelta with
    lr=2 reaches 0.0026 at step 50 from 0.37) would otherwise turn float32's last-bit
    differences, about 5e-8 in absolute terms, into a large "relative" error.
    """
    scales: dict = {}
    for step in CHECKPOINTS:
        b = theirs[step]
        for i, y in enumerate(b.params):
            scales[i, None] = max(scales.get((i, None), 0.0), magnitude(y))
        for i, state in b.state.items():
            for key, y in state.items():
                scales[i, key] = max(scales.get((i, key), 0.0), magnitude(y))
    worst = 0.0
    for step in CHECKPOINTS:
        a, b = ours[step], theirs[step]
        where = f"after step {step}"
        for i, (x, y) in enumerate(zip(a.params, b.params, strict=True)):
            assert x.dtype == y.dtype and x.shape == y.shape, f"param {i} {where}"
            dev = deviation(x, y, scales[i, None])
            assert dev <= tolerance, f"param {i} {where}: deviation {dev:.3e} > {tolerance:g}"
            worst = max(worst, dev)
        assert sorted(a.state) == sorted(b.state), f"parameters with a state {where}"
        for i, state in b.state.items():
            mine = a.state[i]
            assert list(mine) == list(state), f"state keys of param {i} {where}"
            for key, y in state.items():
                x = mine[key]
                label = f"state[{i}][{key!r}] {where}"
                assert x.dtype == y.dtype, f"{label}: dtype {x.dtype} != {y.dtype}"
                assert x.shape == y.shape, f"{label}: shape {x.shape} != {y.shape}"
                if key == "step":
                    assert torch.equal(x, y), f"{label}: {x} != {y}"
                    continue
                dev = deviation(x, y, scales[i, key])
                assert dev <= tolerance, f"{label}: deviation {dev:.3e} > {tolerance:g}"
                worst = max(worst, dev)
    a, b = ours[STEPS].structure, theirs[STEPS].structure
    assert a["state"] == b["state"], "state_dict()['state'] keys"
    assert a["param_groups"] == b["param_groups"], "state_dict()['param_groups']"
    return worst


@pytest.mark.parametrize(
    ("c", "dtype", "engine"), GRID, ids=[f"{c.id}-{d}-{e}" for c, d, e in GRID]
)
def test_matches_torch_optim(c, dtype, engine, torch_conformance_record):
    dt = DTYPES[dtype]
    cls = getattr(ot, c.optimizer)
    theirs = reference(c, dt)
    ours = trajectory(lambda ps: cls(ps, engine=engine, **c.kwargs), c, dt)
    worst = compare(ours, theirs, TOLERANCE[dt])
    torch_conformance_record(c.optimizer, c.label, engine, dtype, worst)


# -- torch's default dtype -------------------------------------------------------------------


@pytest.fixture
def default_float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


DEFAULT_DTYPE_CASES = [c for c in CASES if c.big]


@pytest.mark.parametrize("c", DEFAULT_DTYPE_CASES, ids=[c.optimizer for c in DEFAULT_DTYPE_CASES])
def test_default_dtype_float64(c, default_float64):
    """With torch's default dtype float64, ``step`` (and NAdam's ``mu_product``) are float64
    tensors in torch.optim; optimlab.torch follows (dtypes compared in ``compare``)."""
    small = Case(c.optimizer, c.options)
    cls = getattr(ot, c.optimizer)
    ref = reference_class(c.optimizer)
    theirs = trajectory(lambda ps: ref(ps, **small.kwargs), small, torch.float64)
    ours = trajectory(lambda ps: cls(ps, **small.kwargs), small, torch.float64)
    compare(ours, theirs, TOLERANCE[torch.float64])
    for state in ours[STEPS].state.values():
        for key in ("step", "mu_product"):
            if key in state:
                assert state[key].dtype == torch.float64


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("momentum_decay", [4e-3, 0.3])
def test_nadam_float64_params_float32_default(engine, momentum_decay):
    """float64 parameters under torch's default float32: torch's ``mu_product`` is a float32
    tensor, multiplied in float32. Every step: mu_product bit for bit, parameters and moments
    within 1e-9."""
    assert torch.get_default_dtype() == torch.float32
    gen = torch.Generator().manual_seed(7)
    init = [torch.randn(s, generator=gen, dtype=torch.float64) for s in [(), (3, 5), (40,)]]
    theirs = [torch.nn.Parameter(x.clone()) for x in init]
    ours = [torch.nn.Parameter(x.clone()) for x in init]
    kwargs = dict(lr=0.05, betas=(0.99, 0.999), momentum_decay=momentum_decay)
    ref = torch.optim.NAdam(theirs, **kwargs)
    opt = ot.NAdam(ours, engine=engine, **kwargs)
    for step in range(1, 251):
        for x, y in zip(theirs, ours, strict=True):
            g = torch.randn(x.shape, generator=gen, dtype=torch.float64)
            x.grad, y.grad = g, g.clone()
        ref.step()
        opt.step()
        for i, (x, y) in enumerate(zip(theirs, ours, strict=True)):
            sx, sy = ref.state[x], opt.state[y]
            assert sy["mu_product"].dtype == sx["mu_product"].dtype == torch.float32
            assert torch.equal(sy["mu_product"], sx["mu_product"]), (
                f"mu_product of param {i} at step {step}: "
                f"{sy['mu_product'].item()!r} != {sx['mu_product'].item()!r}"
            )
            assert torch.equal(sy["step"], sx["step"])
            for a, b in (
                (y, x),
                (sy["exp_avg"], sx["exp_avg"]),
                (sy["exp_avg_sq"], sx["exp_avg_sq"]),
            ):
                dev = deviation(a.detach(), b.detach())
                assert dev <= 1e-9, f"param {i} at step {step}: deviation {dev:.3e}"
