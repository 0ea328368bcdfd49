"""One rank of the two-process DistributedDataParallel runs of ``test_distributed.py``.

Run by path by the test (``python tests/torch/_ddp_worker.py ddp,zero RANK WORLD INIT OUT``),
never collected by pytest. Each rank trains the float64 digits MLP on its half of every batch
of ``OUT/batches.pt`` (written by the test from :func:`batches`, so that both sides train on the
very same tensors and the workers need not import scikit-learn) and writes what it ends with to
``OUT/rank<RANK>.pt`` with ``torch.save``. The test's single-process run is :func:`reference`.

Scenarios:

- ``ddp``: ``optimlab.torch.Adam`` and ``optimlab.torch.SGD`` (momentum, Nesterov, weight decay;
  gradients as views into DDP's buckets) on DDP models.
- ``zero``: ``ZeroRedundancyOptimizer(optimizer_class=optimlab.torch.Adam)`` on a DDP model,
  the parameters once as they are and once as views into ZeRO's flat buckets; rank 0 also
  saves the consolidated optimizer state dict.
- ``fsdp``: FSDP2 (``fully_shard``) with ``optimlab.torch.Adam`` on the DTensor shards, with
  the fused kernel on each rank's shard and with torch operations; ``nan_policy="skip"`` with
  a NaN in one rank's shard; a torch.distributed.checkpoint save and load halfway.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import torch
from torch import nn

STEPS = 20
BATCH = 64  # each of the two ranks takes 32 of every batch
DTYPE = torch.float64

#: name -> (optimizer class name, keyword arguments, DDP's gradient_as_bucket_view)
DDP_RUNS = {
    "adam": ("Adam", dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-4), False),
    "sgd": ("SGD", dict(lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-4), True),
}
#: name -> ZeroRedundancyOptimizer's parameters_as_bucket_view
ZERO_RUNS = {"zero": False, "zero_bucket_view": True}
ZERO_ADAM = dict(lr=1e-2, betas=(0.9, 0.99))
#: name -> optimlab.torch engine of the FSDP2 runs (auto: the fused kernel on each shard)
FSDP_RUNS = {"fsdp": "auto", "fsdp_torch_ops": "torch", "fsdp_nan_skip": "auto"}
#: the step at which ``fsdp_nan_skip`` puts a NaN into rank 0's shard of one gradient
FSDP_NAN_STEP = 5
#: the folder of this run's files (set by ``main``)
OUT = ""
FSDP_ADAM = dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-4)


def batches(steps: int = STEPS, batch: int = BATCH):
    """The ``steps`` full batches ``(x, y)`` (float64) every run trains on, in order."""
    from optimlab.torch.examples import digits

    data = digits(0, dtype=DTYPE)
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(7))
    out = []
    for step in range(steps):
        start = (step * batch) % (len(order) - batch)
        idx = order[start : start + batch]
        out.append((data.x_train[idx], data.y_train[idx]))
    return out


def new_model() -> nn.Module:
    """The digits MLP in float64, from ``torch.manual_seed(0)`` (the same on every rank)."""
    from optimlab.torch.examples import DigitsMLP

    torch.manual_seed(0)
    return DigitsMLP().to(DTYPE)


def reference(optimizer_class, data, **kwargs):
    """Single-process training on the full batches ``data``: ``(model, optimizer, losses)``."""
    model = new_model()
    optimizer = optimizer_class(model.parameters(), **kwargs)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for x, y in data:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return model, optimizer, losses


def _train_on_shares(ddp, optimizer, data, rank: int, world: int, before_step=None) -> list:
    """Each rank steps on its share of every batch; returns the full-batch mean loss per step
    (the mean of the ranks' losses, as DDP and FSDP average their gradients).
    ``before_step(i)`` runs between the backward pass and the i-th step."""
    import torch.distributed as dist

    loss_fn = nn.CrossEntropyLoss()
    share = BATCH // world
    losses = []
    for i, (x, y) in enumerate(data):
        part = slice(rank * share, (rank + 1) * share)
        optimizer.zero_grad()
        loss = loss_fn(ddp(x[part]), y[part])
        loss.backward()
        if before_step is not None:
            before_step(i)
        optimizer.step()
        total = loss.detach().clone()
        dist.all_reduce(total)
        losses.append(float(total) / world)
    return losses


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _run_ddp(ot, data, rank: int, world: int) -> dict:
    from torch.nn.parallel import DistributedDataParallel as DDP

    result = {}
    for name, (cls, kwargs, bucket_view) in DDP_RUNS.items():
        model = new_model()
        ddp = DDP(model, gradient_as_bucket_view=bucket_view)
        optimizer = getattr(ot, cls)(ddp.parameters(), **kwargs)
        losses = _train_on_shares(ddp, optimizer, data, rank, world)
        result[name] = {"losses": losses, "params": _params(model), "state": optimizer.state_dict()}
    return result


def _run_zero(ot, data, rank: int, world: int) -> dict:
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    result = {}
    for name, bucket_view in ZERO_RUNS.items():
        model = new_model()
        ddp = DDP(model)
        optimizer = ZeroRedundancyOptimizer(
            ddp.parameters(),
            optimizer_class=ot.Adam,
            parameters_as_bucket_view=bucket_view,
            **ZERO_ADAM,
        )
        losses = _train_on_shares(ddp, optimizer, data, rank, world)
        # the local optimizer holds only this rank's share of the parameters
        local = optimizer.optim
        entry = {
            "losses": losses,
            "params": _params(model),
            "local_type": type(local).__module__ + "." + type(local).__qualname__,
            "local_count": sum(len(g["params"]) for g in local.param_groups),
            "local_state_count": len(local.state),
        }
        optimizer.consolidate_state_dict(to=0)
        if rank == 0:
            entry["state"] = optimizer.state_dict()
        result[name] = entry
    return result


def _run_fsdp(ot, data, rank: int, world: int) -> dict:
    """FSDP2: every Linear layer and the model sharded over the two ranks (``fully_shard``);
    the parameters and the optimizer state are DTensors holding each rank's half."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world,))

    def sharded_model():
        model = new_model()
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model

    result = {}
    for name, engine in FSDP_RUNS.items():
        model = sharded_model()
        first = next(iter(model.parameters()))
        before_step = None
        if name == "fsdp_nan_skip":

            def before_step(i, first=first):
                # a NaN in rank 0's shard only: both ranks must skip the step
                if i == FSDP_NAN_STEP and rank == 0:
                    first.grad._local_tensor.view(-1)[0] = float("nan")

        optimizer = ot.Adam(
            model.parameters(),
            engine=engine,
            nan_policy="skip" if before_step else "propagate",
            **FSDP_ADAM,
        )
        losses = _train_on_shares(model, optimizer, data, rank, world, before_step)
        result[name] = {
            "skipped_steps": optimizer.skipped_steps,
            "losses": losses,
            "params": [p.full_tensor().detach().clone() for p in model.parameters()],
            "param_type": type(first).__name__,
            "state_type": type(optimizer.state[first]["exp_avg"]).__name__,
            # the parameters whose fused kernel ran on the shard (its compiled entry is set)
            "fused_views": sum(
                view.entry is not None
                for view in optimizer.__dict__.get("_fused_views", {}).values()
            ),
            "param_count": len(list(model.parameters())),
        }
    result["fsdp_resumed"] = _fsdp_checkpoint(ot, sharded_model, data, rank, world)
    return result


def _fsdp_checkpoint(ot, sharded_model, data, rank: int, world: int) -> dict:
    """Train half the steps, save model and optimizer with torch.distributed.checkpoint
    (each rank writes its shards), load them into a fresh sharded model and optimizer, train
    the other half: the parameters at the end (to compare with the uninterrupted ``fsdp``)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    folder = os.path.join(OUT, "fsdp-checkpoint")
    half = len(data) // 2
    model = sharded_model()
    optimizer = ot.Adam(model.parameters(), **FSDP_ADAM)
    _train_on_shares(model, optimizer, data[:half], rank, world)
    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optimizer_state}, checkpoint_id=folder)
    del model, optimizer

    model = sharded_model()
    optimizer = ot.Adam(model.parameters(), **FSDP_ADAM)
    model_state, optimizer_state = get_state_dict(model, optimizer)
    loaded = {"model": model_state, "optim": optimizer_state}
    dcp.load(loaded, checkpoint_id=folder)
    set_state_dict(
        model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optim"]
    )
    steps = [float(state["step"]) for state in optimizer.state.values()]
    losses = _train_on_shares(model, optimizer, data[half:], rank, world)
    return {
        "losses": losses,
        "params": [p.full_tensor().detach().clone() for p in model.parameters()],
        "steps_after_load": steps,
    }


SCENARIOS = {"ddp": _run_ddp, "zero": _run_zero, "fsdp": _run_fsdp}


def main(scenarios: list[str], rank: int, world: int, init_file: str, out: str) -> None:
    """Run ``scenarios`` (keys of :data:`SCENARIOS`) in one process group; save
    ``{scenario: {run name: result}}`` to ``OUT/rank<RANK>.pt``."""
    torch.set_num_threads(1)
    import torch.distributed as dist

    import optimlab.torch as ot

    global OUT
    OUT = out
    runs = [SCENARIOS[name] for name in scenarios]  # KeyError before any rank waits
    data = torch.load(os.path.join(out, "batches.pt"))
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    try:
        result = {s: run(ot, data, rank, world) for s, run in zip(scenarios, runs, strict=True)}
        dist.barrier()
        torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    scenarios_, rank_, world_, init_file_, out_ = sys.argv[1:6]
    main(scenarios_.split(","), int(rank_), int(world_), init_file_, out_)
