"""See the one-import switch for yourself: the digits models trained twice from one seed, once
with ``torch.optim`` and once with ``optimlab.torch``, side by side.

    python -m optimlab.torch.demo                       # MLP and CNN, five optimizers, float32
    python -m optimlab.torch.demo --dtype float64 --epochs 2 --models MLP
    python -m optimlab.torch.demo --plot torch_vs_optimlab.png   # the loss curves too

For each model and optimizer: the final training loss of both runs, the largest difference
between their per-step losses (the two compute the same update, so in float64 it is rounding,
about 1e-15), both test accuracies, and the mean time of a whole training step (forward,
backward, step) of each (the median over the steps).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from . import examples
from . import optimizers as ours

MODELS = {"MLP": examples.DigitsMLP, "CNN": examples.DigitsCNN}
#: optimizer: its arguments (the same for both libraries)
OPTIMIZERS = {
    "SGD": dict(lr=0.1, momentum=0.9, nesterov=True),
    "Adam": dict(lr=1e-2),
    "AdamW": dict(lr=1e-2, weight_decay=0.05),
    "RMSprop": dict(lr=3e-3),
    "Adagrad": dict(lr=0.05),
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def run(library, model_name: str, optimizer: str, data, dtype, epochs: int) -> dict:
    """Train a fresh model (``torch.manual_seed(0)``) with ``library.<optimizer>``: its
    per-step losses, test accuracy and median training-step time in milliseconds."""
    torch.manual_seed(0)
    model = MODELS[model_name]().to(dtype)
    opt = getattr(library, optimizer)(model.parameters(), **OPTIMIZERS[optimizer])
    seconds: list[float] = []
    losses = examples.train(
        model, opt, data.x_train, data.y_train, epochs=epochs, seed=1, step_seconds=seconds
    )
    return {
        "losses": losses,
        "accuracy": examples.accuracy(model, data.x_test, data.y_test),
        # the median: the first step of a process also loads the compiled kernels
        "ms_per_step": 1e3 * statistics.median(seconds),
    }


def compare(model_name: str, optimizer: str, data, dtype, epochs: int) -> dict:
    """Both libraries' runs of one model and optimizer, and how far apart their losses are."""
    theirs = run(torch.optim, model_name, optimizer, data, dtype, epochs)
    mine = run(ours, model_name, optimizer, data, dtype, epochs)
    gap = max(abs(a - b) for a, b in zip(mine["losses"], theirs["losses"], strict=True))
    return {"torch": theirs, "optimlab": mine, "max_loss_gap": gap}


def table(rows: list[tuple[str, str, dict]]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| model | optimizer | final loss torch.optim | final loss optimlab.torch "
        "| max per-step loss gap | test accuracy torch.optim | test accuracy optimlab.torch "
        "| ms/step torch.optim | ms/step optimlab.torch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model_name, optimizer, c in rows:
        t, o = c["torch"], c["optimlab"]
        lines.append(
            f"| {model_name} | {optimizer} | {t['losses'][-1]:.4f} | {o['losses'][-1]:.4f} "
            f"| {c['max_loss_gap']:.1e} | {t['accuracy']:.3f} | {o['accuracy']:.3f} "
            f"| {t['ms_per_step']:.3f} | {o['ms_per_step']:.3f} |"
        )
    return "\n".join(lines)


def figure(rows: list[tuple[str, str, dict]], title: str):
    """Per model, the per-step training loss of every optimizer (torch.optim solid, optimlab
    dashed on top) and, below, the largest gap between the two so far, max over steps <= t of
    |loss_optimlab - loss_torch|, on a log scale (zero drawn at the bottom of the axis)."""
    import numpy as np

    from ..viz import style

    models = list(dict.fromkeys(model for model, _, _ in rows))
    colors = style.colors_for(optimizer for _, optimizer, _ in rows)
    floor = 1e-17
    fig = style.new_figure((5.2 * len(models), 6.4))
    with style.rc_context():
        axes = fig.subplots(2, len(models), squeeze=False, sharex="col", height_ratios=(2, 1))
        for column, model in enumerate(models):
            top, bottom = axes[0, column], axes[1, column]
            for model_name, optimizer, c in rows:
                if model_name != model:
                    continue
                theirs = np.array(c["torch"]["losses"])
                mine = np.array(c["optimlab"]["losses"])
                steps = np.arange(1, len(theirs) + 1)
                color = colors[optimizer]
                top.plot(steps, theirs, color=color, lw=2.2, alpha=0.45, label=optimizer)
                top.plot(steps, mine, color=color, lw=1.0, ls="--")
                gap = np.maximum.accumulate(np.abs(mine - theirs))
                bottom.plot(steps, np.maximum(gap, floor), color=color, lw=1.2)
            top.set_yscale("log")
            top.set_title(f"digits {model}")
            top.set_ylabel("training loss (torch solid, optimlab dashed)")
            top.legend(fontsize="small")
            bottom.set_yscale("log")
            bottom.set_ylim(bottom=floor)
            bottom.set_xlabel("step")
            bottom.set_ylabel("largest |loss gap| so far")
        fig.suptitle(title)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--optimizers", nargs="*", choices=list(OPTIMIZERS), default=list(OPTIMIZERS)
    )
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of 22 steps (default 3)")
    parser.add_argument("--plot", help="also write the loss curves to this PNG, SVG or PDF")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    dtype = DTYPES[args.dtype]
    data = examples.digits(seed=0, dtype=dtype)
    rows = []
    for model_name in args.models:
        for optimizer in args.optimizers:
            rows.append(
                (model_name, optimizer, compare(model_name, optimizer, data, dtype, args.epochs))
            )
    summary = (
        f"digits ({len(data.y_train)} training, {len(data.y_test)} test images), {args.dtype}, "
        f"{args.epochs} epochs of batch 64"
    )
    print(f"{summary}, torch threads {torch.get_num_threads()}")
    print(table(rows))
    if args.plot:
        from ..viz.export import save

        path = save(figure(rows, f"torch.optim and optimlab.torch: {summary}"), args.plot)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
