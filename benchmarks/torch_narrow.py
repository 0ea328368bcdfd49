"""optimlab.torch with narrow state and bf16 stochastic rounding (issue 16), in one run.

Contenders, each stepping one CPU parameter of n elements with the same gradient, timed in
turn (interleaved trials, the median of each):

* ``torch fused fp32``: ``torch.optim.Adam(fused=True)``, float32: the reference of the ratios;
* ``optimlab fp32`` / ``optimlab int8`` / ``optimlab bf16``: ``optimlab.torch.Adam`` with
  ``state_dtype="float32" | "int8" | "bfloat16"`` on a float32 parameter (the fused kernels on
  the tensors' memory);
* on a bfloat16 parameter: ``torch bf16`` (``torch.optim.Adam``, bfloat16 moments, round to
  nearest), ``optimlab bf16 param SR`` (float32 moments, stochastic rounding) and
  ``optimlab bf16 param SR int8`` (int8 moments, stochastic rounding).

State bytes are every state tensor but ``step`` (the generator's 5056 bytes included). Ratios:
time of torch fused fp32 over the contender's (above 1: faster than torch), and torch fused
fp32's state bytes over the contender's.

    python benchmarks/torch_narrow.py                   # 4e6 and 1.6e7 elements
    python benchmarks/torch_narrow.py --quick           # a smoke test: 1e5, 3 trials
    python benchmarks/torch_narrow.py --json docs/torch_narrow.json
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _machine import machine, save_json, time_interleaved  # noqa: E402


def _make(kind, n):
    import torch

    import optimlab.torch as ot

    gen = torch.Generator().manual_seed(16)
    bf16 = "bf16 param" in kind or kind == "torch bf16"
    dtype = torch.bfloat16 if bf16 else torch.float32
    p = torch.nn.Parameter(torch.randn(n, generator=gen).to(dtype))
    p.grad = (torch.randn(n, generator=gen) * 1e-2).to(dtype)
    if kind == "torch fused fp32":
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
    elif kind == "torch bf16":
        opt = torch.optim.Adam([p], lr=1e-3)
    elif kind.startswith("optimlab bf16 param SR"):
        state_dtype = "int8" if kind.endswith("int8") else "float32"
        opt = ot.Adam([p], lr=1e-3, state_dtype=state_dtype, bf16_stochastic_round=True)
    else:
        state_dtype = {"fp32": "float32", "int8": "int8", "bf16": "bfloat16"}[kind.split()[-1]]
        opt = ot.Adam([p], lr=1e-3, state_dtype=state_dtype)

    def state_bytes():
        return sum(v.nbytes for k, v in opt.state[p].items() if k != "step")

    return opt.step, state_bytes


CONTENDERS = (
    "torch fused fp32",
    "optimlab fp32",
    "optimlab int8",
    "optimlab bf16",
    "torch bf16",
    "optimlab bf16 param SR",
    "optimlab bf16 param SR int8",
)


def measure(n: int, trials: int) -> dict:
    """Median step time (ms), state bytes and the ratios of each contender at ``n``."""
    makers = {name: functools.partial(_make, name, n) for name in CONTENDERS}
    return time_interleaved(makers, trials, "torch fused fp32")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e5 elements, 3 trials")
    parser.add_argument("--sizes", default="4e6,1.6e7")
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    trials = 3 if args.quick else args.trials
    import numba
    import torch

    record = {
        "machine": machine(),
        "load_average": list(os.getloadavg()),
        "threads": {"numba": numba.get_num_threads(), "torch": torch.get_num_threads()},
        "trials": trials,
        "sizes": {},
    }
    print(f"{record['machine']}; load average {record['load_average']}; {trials} trials")
    print(f"{'elements':>8}  {'contender':<28} {'ms/step':>9} {'vs torch':>9} {'state MB':>9}")
    for n in sizes:
        rows = measure(n, trials)
        record["sizes"][str(n)] = rows
        for name, row in rows.items():
            print(
                f"{n:>8.2g}  {name:<28} {row['median_ms']:>9.2f} "
                f"{row['speed_vs_torch_fused']:>8.2f}x {row['state_bytes'] / 1e6:>9.2f}"
            )
    record["load_average_after"] = list(os.getloadavg())
    if args.json:
        save_json(args.json, record)


if __name__ == "__main__":
    main()
