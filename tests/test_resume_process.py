"""Resume in a new process is bit-identical (issue 16): train k steps, save, continue in a fresh
``python`` process, and compare with a run that never stopped, for

- optimlab.torch.Adam with ``state_dtype="int8"`` and ``bf16_stochastic_round=True`` (a
  bfloat16 parameter rounded stochastically, a float32 one; both with int8 moments), saved
  with ``torch.save(opt.state_dict())``: the generators' states travel in the state dict;
- the core ``optimlab.Adam(state_dtype="int8")``, saved with its npz checkpoint
  (``opt.save(path, params)``).

One subprocess does both (a process start with torch costs seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import optimlab

torch = pytest.importorskip("torch")

STEPS, SAVED_AT = 6, 3

# the training code, run here for the uninterrupted run and in the child for the resume
SCRIPT = r"""
import numpy as np
import torch
import optimlab as ol
import optimlab.torch as ot

N = 5000


def torch_gradient(t, n, dtype):
    return torch.randn(n, generator=torch.Generator().manual_seed(100 * t + n)).to(dtype)


def torch_setup():
    gen = torch.Generator().manual_seed(0)
    params = [
        torch.nn.Parameter(torch.randn(N, generator=gen).to(torch.bfloat16)),
        torch.nn.Parameter(torch.randn(N, generator=gen)),
    ]
    opt = ot.Adam(params, lr=1e-3, state_dtype="int8", bf16_stochastic_round=True, seed=7)
    return params, opt


def torch_steps(params, opt, start, stop):
    for t in range(start, stop):
        for p in params:
            p.grad = torch_gradient(t, p.numel(), p.dtype)
        opt.step()


def core_setup():
    params = [np.random.default_rng(0).standard_normal(N).astype(np.float32)]
    return params, ol.Adam(learning_rate=1e-2, state_dtype="int8")


def core_steps(params, opt, start, stop):
    for t in range(start, stop):
        g = np.random.default_rng(1000 + t).standard_normal(N).astype(np.float32)
        opt.apply_gradients(zip([g], params))


def resume(folder, saved_at, steps):
    params, opt = torch_setup()
    saved = torch.load(folder + "/torch.pt")
    with torch.no_grad():
        for p, value in zip(params, saved["params"]):
            p.copy_(value)
    opt.load_state_dict(saved["opt"])
    torch_steps(params, opt, saved_at, steps)
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()},
               folder + "/torch_resumed.pt")
    arrays, core = core_setup()
    core.load(folder + "/core.npz", arrays)
    core_steps(arrays, core, saved_at, steps)
    np.save(folder + "/core_resumed.npy", arrays[0])
"""


def test_resume_in_a_new_process_is_bit_identical(tmp_path):
    ns: dict = {}
    exec(compile(SCRIPT, "<resume script>", "exec"), ns)  # noqa: S102 - our own code
    folder = str(tmp_path)
    # k steps, saved, then on to the end in this process: the uninterrupted run (saving
    # changes nothing)
    params, opt = ns["torch_setup"]()
    ns["torch_steps"](params, opt, 0, SAVED_AT)
    torch.save(
        {"params": [p.detach() for p in params], "opt": opt.state_dict()}, folder + "/torch.pt"
    )
    arrays, core = ns["core_setup"]()
    ns["core_steps"](arrays, core, 0, SAVED_AT)
    core.save(folder + "/core.npz", arrays)
    ns["torch_steps"](params, opt, SAVED_AT, STEPS)
    ns["core_steps"](arrays, core, SAVED_AT, STEPS)
    source = os.path.dirname(os.path.dirname(optimlab.__file__))
    env = dict(os.environ, PYTHONPATH=source + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = SCRIPT + f"\nresume({folder!r}, {SAVED_AT}, {STEPS})\n"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = torch.load(folder + "/torch_resumed.pt")
    for p, q in zip(params, resumed["params"], strict=True):
        assert q.dtype == p.dtype and torch.equal(p.detach(), q)
    ours = opt.state_dict()["state"]
    for index, state in resumed["opt"]["state"].items():
        assert state.keys() == ours[index].keys()
        for key, value in state.items():
            assert torch.equal(value, ours[index][key]), (index, key)
    assert "bf16_sr_generator" in ours[0] and ours[0]["exp_avg"].dtype == torch.uint8
    assert np.array_equal(np.load(folder + "/core_resumed.npy"), arrays[0])
