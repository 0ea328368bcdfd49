"""Does software prefetch speed up the fused Adam step? An experiment, kept so it can be rerun.

Three numba kernels with the same per-element Adam arithmetic, timed side by side with
``torch.optim.Adam(fused=True)`` in one process (median over interleaved trials):

* ``plain``: one ``prange`` loop, as the fused engine runs it;
* ``chunked``: 4096-element chunks, each a separate vectorized loop (no prefetch);
* ``chunked + prefetch D``: the same, issuing ``llvm.prefetch`` for p, g, m and v D elements
  ahead (every 16 elements: one per 64-byte line) before each chunk.

    python benchmarks/adam_prefetch.py            # 1.6e7 float32 parameters
    python benchmarks/adam_prefetch.py --n 6.4e7
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

OPTS = dict(error_model="numpy", boundscheck=False, nogil=True)
CHUNK = 4096


@intrinsic
def prefetch(typingctx, arr, idx):
    """llvm.prefetch(&arr[idx], read, no temporal locality hint, data cache)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        ary, ind = args
        aryty = signature.args[0]
        array = context.make_array(aryty)(context, builder, ary)
        ptr = cgutils.get_item_pointer(context, builder, aryty, array, [ind])
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        zero, one = ir.Constant(i32, 0), ir.Constant(i32, 1)
        builder.call(fn, [builder.bitcast(ptr, i8p), zero, zero, one])
        return context.get_dummy_value()

    return sig, codegen


@njit(parallel=True, **OPTS)
def plain(p, g, m, v, a, b1, omb1, b2, omb2, eps):
    """Adam, one pass: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= a m / (sqrt(v) + eps)."""
    for i in prange(p.size):
        gi = g[i]
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - a * mi / (np.sqrt(vi) + eps)


@njit(**OPTS)
def _adam_range(p, g, m, v, a, b1, omb1, b2, omb2, eps):
    for i in range(p.size):
        gi = g[i]
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - a * mi / (np.sqrt(vi) + eps)


@njit(parallel=True, **OPTS)
def chunked(p, g, m, v, a, b1, omb1, b2, omb2, eps, distance):
    """``plain`` in CHUNK-sized pieces; ``distance > 0`` prefetches that far ahead first."""
    for c in prange((p.size + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(p.size, lo + CHUNK)
        if distance > 0:
            for k in range(0, CHUNK, 16):
                j = lo + distance + k
                if j < p.size:
                    prefetch(p, j)
                    prefetch(g, j)
                    prefetch(m, j)
                    prefetch(v, j)
        _adam_range(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], a, b1, omb1, b2, omb2, eps)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1.6e7, help="parameters (float32)")
    parser.add_argument("--trials", type=int, default=15)
    args = parser.parse_args()
    n = int(args.n)
    rng = np.random.default_rng(0)
    f32 = np.float32
    p = rng.standard_normal(n).astype(f32)
    g = (1e-3 * rng.standard_normal(n)).astype(f32)
    m, v = np.zeros(n, f32), np.zeros(n, f32)
    s = tuple(f32(x) for x in (1e-4, 0.9, 0.1, 0.999, 0.001, 1e-8))
    tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
    tp.grad = torch.from_numpy(g.copy())
    topt = torch.optim.Adam([tp], lr=1e-4, fused=True)
    cases = {
        "plain": lambda: plain(p, g, m, v, *s),
        "chunked": lambda: chunked(p, g, m, v, *s, 0),
        "chunked + prefetch 4096": lambda: chunked(p, g, m, v, *s, 4096),
        "chunked + prefetch 8192": lambda: chunked(p, g, m, v, *s, 8192),
        "torch fused": topt.step,
    }
    for step in cases.values():
        step()
        step()
    times = {k: [] for k in cases}
    for _ in range(args.trials):
        for k, step in cases.items():
            start = time.perf_counter()
            for _ in range(3):
                step()
            times[k].append((time.perf_counter() - start) / 3)
    base = float(np.median(times["plain"]))
    print(f"Adam, {n:.3g} float32 parameters; median of {args.trials} interleaved trials")
    for k, ts in times.items():
        med = float(np.median(ts))
        print(f"  {k:26s} {1e3 * med:8.3f} ms   time / plain {med / base:.3f}")


if __name__ == "__main__":
    main()
