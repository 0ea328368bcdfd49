"""How much state does Adafactor keep next to Adam? Bytes, counted from the built optimizers.

For one n x n float32 matrix (default 4096 x 4096, 64 MiB of parameters) the script builds
Adafactor and Adam in each library and adds up the bytes of every state buffer they hold after
one step:

* optimlab (the Keras dialect, ``preset="keras"``): the slots of ``state_dict()``;
* optimlab.torch and torch.optim: every tensor of ``optimizer.state`` (the ``step`` counts
  included).

Adam keeps two moments of the parameter's shape (2 n^2 numbers); Adafactor a row and a column
of averages (2 n), so the ratio is about 1 / n::

    python benchmarks/adafactor_memory.py             # 4096 x 4096
    python benchmarks/adafactor_memory.py --size 512
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import optimlab as ol  # noqa: E402


def optimlab_state_bytes(name: str, n: int) -> int:
    """Bytes of the state of ``optimlab.<name>`` after one step on an n x n float32 matrix."""
    p = np.zeros((n, n), np.float32)
    opt = ol.get(name)
    opt.apply_gradients([(np.full_like(p, 1e-3), p)])
    return sum(buf.nbytes for buf in opt.state_dict()["slots"].values())


def torch_state_bytes(cls, n: int) -> int:
    """Bytes of every state tensor of the torch optimizer ``cls`` after one step."""
    import torch

    p = torch.nn.Parameter(torch.zeros(n, n, dtype=torch.float32))
    opt = cls([p])
    p.grad = torch.full_like(p, 1e-3)
    opt.step()
    return sum(
        t.numel() * t.element_size()
        for state in opt.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    )


def rows(n: int) -> list[tuple[str, int, int]]:
    """(library, Adafactor's bytes, Adam's bytes) for an n x n float32 matrix."""
    out = [("optimlab", optimlab_state_bytes("Adafactor", n), optimlab_state_bytes("Adam", n))]
    try:
        import torch

        import optimlab.torch as ot
    except ImportError:  # pragma: no cover - torch is optional
        return out
    out.append(
        ("optimlab.torch", torch_state_bytes(ot.Adafactor, n), torch_state_bytes(ot.Adam, n))
    )
    out.append(
        (
            "torch.optim",
            torch_state_bytes(torch.optim.Adafactor, n),
            torch_state_bytes(torch.optim.Adam, n),
        )
    )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="n of the n x n matrix")
    args = parser.parse_args(argv)
    n = args.size
    print(f"# state of one {n} x {n} float32 matrix ({n * n * 4} bytes of parameters)")
    print("| library | Adafactor bytes | Adam bytes | Adafactor / Adam |")
    print("|---|---|---|---|")
    for library, factored, adam in rows(n):
        print(f"| {library} | {factored} | {adam} | {factored / adam:.4%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
