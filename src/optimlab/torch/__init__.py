"""optimlab as a PyTorch optimizer: change one import, keep every torch habit.

    import optimlab.torch as optim          # instead of: import torch.optim as optim
    opt = optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for x, y in data:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step(); sched.step()

SGD, Adagrad, RMSprop, Adam, AdamW, NAdam, Adamax, Adadelta, RAdam, Rprop, ASGD, SparseAdam,
Adafactor, LBFGS, Muon (torch.optim's arguments, defaults, state keys and numerics) and Lion
(the authors' reference implementation). On CPU float32 and float64 tensors the update is one
fused numba pass over the tensor's own memory; elsewhere the same rule runs as torch operations
(SparseAdam's sparse rows always: gathered, updated, written back). Adafactor's rule works on
whole tensors: it runs in NumPy on the memory of CPU float32/float64 tensors. Muon's
Newton-Schulz iteration runs in torch's own bfloat16 operations on any device (its rule's
torch engine, :mod:`optimlab.torch.muon`), to torch.optim.Muon's bits. Needs
``pip install 'optimlab[torch]'``.

``preset="keras" | "optax"`` (keyword-only, default ``"torch"``) keeps torch's argument names
and gives that library's numerics, as ``optimlab.<Class>(preset=...)`` computes them: the
arguments left out take its defaults (``Adam(params, preset="keras")`` has eps 1e-7), and its
formulas and conventions apply (see :mod:`optimlab.torch._presets`)::

    opt = optim.Adam(model.parameters(), lr=1e-3, preset="keras")   # keras.optimizers.Adam
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "optimlab.torch needs PyTorch: pip install 'optimlab[torch]' (torch==2.13.0)"
    ) from error

from ._base import ENGINES, Optimizer
from .lbfgs import LBFGS
from .optimizers import (
    ASGD,
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Muon,
    NAdam,
    RAdam,
    RMSprop,
    Rprop,
    SparseAdam,
)

__all__ = [
    "ASGD",
    "ENGINES",
    "OPTIMIZERS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "LBFGS",
    "Lion",
    "Muon",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SparseAdam",
]
