"""The ``optimlab`` command line.

optimlab tour [--out DIR] [--quick]   the lecture as an HTML report (every chapter an experiment)
optimlab compare --on NAME ...         optimizers on a surface or data problem: a figure
optimlab fit --problem NAME ...        batch / stochastic / mini-batch training of one optimizer
optimlab sweep --surface NAME ...      learning-rate sweeps: sensitivity curves, tuned rates
optimlab differences [--markdown]      where PyTorch, Keras and optax differ, measured
optimlab presets [--markdown]          every optimizer's defaults under each preset
"""

from __future__ import annotations

import argparse
import sys


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]


def _keys(per_preset: dict) -> list[str]:
    """The hyperparameters of an optimizer in any preset, in first-seen order."""
    return list(dict.fromkeys(k for values in per_preset.values() for k in values))


def _peer(name: str, preset: str) -> str:
    from . import presets

    return presets.PEERS[name][preset] or f"(no {preset} {name}: {preset} conventions)"


def _presets_table() -> str:
    """Every optimizer's defaults per preset, one aligned table per optimizer."""
    from . import presets

    lines = []
    for name, per_preset in presets.DEFAULTS.items():
        lines.append(f"== {name}")
        rows = [["", *presets.PRESETS]]
        for key in _keys(per_preset):
            rows.append([key, *(repr(per_preset[p].get(key)) for p in presets.PRESETS)])
        rows.append(["peer", *(_peer(name, p) for p in presets.PRESETS)])
        lines.extend(_aligned(rows))
        lines.append("")
    return "\n".join(lines)


def _markdown_value(value) -> str:
    from . import presets

    return "(required)" if value is presets.REQUIRED else repr(value)


def _presets_markdown() -> str:
    """One Markdown table, optimizer x preset: the peer reproduced and the defaults in which
    the presets differ (those that agree everywhere are left out)."""
    from . import presets

    lines = ["| optimizer | " + " | ".join(f'`preset="{p}"`' for p in presets.PRESETS) + " |"]
    lines.append("|---" * (len(presets.PRESETS) + 1) + "|")
    for name, per_preset in presets.DEFAULTS.items():
        differing = [
            key
            for key in _keys(per_preset)
            if len({repr(per_preset[p].get(key)) for p in presets.PRESETS}) > 1
        ]
        cells = []
        for p in presets.PRESETS:
            values = ", ".join(f"{k}={_markdown_value(per_preset[p].get(k))}" for k in differing)
            peer = presets.PEERS[name][p]
            cells.append((f"`{peer}`" if peer else _peer(name, p)) + f"<br>{values}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _add_lab_commands(sub) -> None:
    tour = sub.add_parser("tour", help="run every chapter of the lecture and write the HTML report")
    tour.add_argument("--out", default="optimlab-tour", help="report folder (default: %(default)s)")
    tour.add_argument("--quick", action="store_true", help="small grids and short horizons")
    tour.add_argument("--only", nargs="+", metavar="CHAPTER", help="run only these chapters")
    tour.add_argument("--no-progress", action="store_true", help="no progress bar")

    compare = sub.add_parser(
        "compare", help="optimizers on a surface or a data problem, as one figure"
    )
    compare.add_argument("--on", default="rosenbrock", help="a surface or problem name")
    compare.add_argument(
        "--optimizers",
        nargs="+",
        default=["SGD", "Momentum", "NAG", "RMSprop", "Adam"],
        help="lab names (SGD, Momentum, NAG, Adagrad, RMSprop, Adam, ...) or 'Name:key=value,...'",
    )
    compare.add_argument("--steps", type=int, default=500, help="updates (surfaces)")
    compare.add_argument("--epochs", type=int, default=20, help="epochs (data problems)")
    compare.add_argument("--batch-size", type=int, default=32, help="(data problems)")
    compare.add_argument(
        "--lr", type=float, help="one learning rate for all (default: each tuned on a log grid)"
    )
    compare.add_argument("--start", type=float, nargs=2, metavar=("X", "Y"), help="start point")
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--out", default="compare.png", help="figure file (.png, .svg, .pdf)")
    compare.add_argument("--animate", metavar="GIF", help="also write an animation (.gif)")

    fit = sub.add_parser("fit", help="train one optimizer on a data problem")
    fit.add_argument("--problem", default="linear", help="data problem name")
    fit.add_argument("--optimizer", default="SGD", help="lab name or 'Name:key=value,...'")
    fit.add_argument("--lr", type=float, default=0.01, help="learning rate")
    fit.add_argument("--epochs", type=int, default=10)
    fit.add_argument(
        "--batch-size",
        default="none",
        help="'none' = batch GD, 1 = stochastic, k = mini-batch (default: %(default)s)",
    )
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", help="loss-curve figure file")

    sweep = sub.add_parser("sweep", help="learning-rate sweeps of optimizers on a surface")
    sweep.add_argument("--surface", default="rosenbrock", help="surface name")
    sweep.add_argument(
        "--optimizers", nargs="+", help="lab names (default: the ten of the verdict)"
    )
    sweep.add_argument("--steps", type=int, default=500)
    sweep.add_argument(
        "--lrs", default="1e-5:1e2:36", help="log grid LOW:HIGH:COUNT (default: %(default)s)"
    )
    sweep.add_argument("--seeds", type=int, default=1, help="seeds (with --noise)")
    sweep.add_argument("--noise", type=float, default=0.0, help="gradient noise std")
    sweep.add_argument("--out", default="sweep.png", help="sensitivity figure file")


def _log_grid(text: str):
    import numpy as np

    try:
        low, high, count = text.split(":")
        low, high, count = float(low), float(high), int(count)
    except ValueError:
        raise SystemExit(
            f"--lrs must look like LOW:HIGH:COUNT (e.g. 1e-5:1e2:36), got {text!r}"
        ) from None
    if not (0 < low < high) or count < 2:
        raise SystemExit(f"--lrs needs 0 < LOW < HIGH and COUNT >= 2, got {text!r}")
    return np.logspace(np.log10(low), np.log10(high), count)


def _target(name: str):
    """A surface or a data problem by name (SystemExit listing both kinds when unknown)."""
    from .lab import problems, surfaces

    if name in surfaces.SURFACES:
        return "surface", surfaces.get(name)
    if name in problems.PROBLEMS:
        return "problem", problems.get(name)
    raise SystemExit(
        f"unknown surface or problem {name!r}; surfaces: {', '.join(surfaces.SURFACES)}; "
        f"problems: {', '.join(problems.PROBLEMS)}"
    )


def _run_tour(args) -> int:
    import json
    import time
    from pathlib import Path

    from .report import write_tour

    start = time.perf_counter()
    index = write_tour(args.out, args.only, quick=args.quick, progress=not args.no_progress)
    timings = json.loads((Path(args.out) / "timings.json").read_text())
    print(f"wrote {index} ({len(timings)} chapters in {time.perf_counter() - start:.1f} s)")
    return 0


def _run_compare(args) -> int:
    from .lab import compare

    kind, target = _target(args.on)
    result = compare.compare(
        target,
        args.optimizers,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        start=args.start,
        seed=args.seed,
    )
    print(result.table())
    result.save(args.out)
    print(f"wrote {args.out}")
    if args.animate:
        if kind != "surface":
            raise SystemExit("--animate draws paths on a surface; --on names a data problem")
        result.animate(args.animate)
        print(f"wrote {args.animate}")
    return 0


def _run_fit(args) -> int:
    from . import optimizers
    from .lab import problems, training
    from .lab.contenders import resolve

    if args.problem not in problems.PROBLEMS:
        raise SystemExit(f"unknown problem {args.problem!r}; valid: {', '.join(problems.PROBLEMS)}")
    batch = None if args.batch_size.lower() == "none" else int(args.batch_size)
    label, base, kwargs = resolve(args.optimizer)
    opt = optimizers.get(base, learning_rate=args.lr, **kwargs)
    history = training.fit(
        problems.get(args.problem), opt, epochs=args.epochs, batch_size=batch, seed=args.seed
    )
    print(
        f"{label} on {args.problem}: {history.updates} updates, "
        f"{history.gradient_evaluations} gradient evaluations, "
        f"{history.wall_time:.3f} s"
    )
    for epoch, loss in enumerate(history.loss_per_epoch):
        print(f"  epoch {epoch:3d}  loss {loss:.6g}")
    if args.out:
        import numpy as np

        from .viz import lines_figure, save

        curves = {label: (np.arange(len(history.loss_per_epoch)), history.loss_per_epoch)}
        fig = lines_figure(
            curves, xlabel="epoch", ylabel="full-data loss", title=f"{label} on {args.problem}"
        )
        save(fig, args.out)
        print(f"wrote {args.out}")
    return 0


def _run_sweep(args) -> int:
    import time

    from .lab import compare

    _, surface = _target(args.surface)
    if not hasattr(surface, "gradient"):
        raise SystemExit("sweep runs on surfaces; use compare for data problems")
    start = time.perf_counter()
    result = compare.sensitivity(
        surface,
        args.optimizers,
        learning_rates=_log_grid(args.lrs),
        steps=args.steps,
        seeds=range(args.seeds),
        gradient_noise=args.noise,
    )
    seconds = time.perf_counter() - start
    print(result.table())
    print(f"({seconds:.2f} s)")
    result.save(args.out)
    print(f"wrote {args.out}")
    return 0


LAB_COMMANDS = {"tour": _run_tour, "compare": _run_compare, "fit": _run_fit, "sweep": _run_sweep}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``optimlab`` command."""
    parser = argparse.ArgumentParser(
        prog="optimlab",
        description="The optimizers of deep learning, exact and fast: a library and a lab.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_lab_commands(sub)
    diff = sub.add_parser(
        "differences", help="where PyTorch, Keras and optax differ, each with a measured example"
    )
    diff.add_argument("--markdown", action="store_true", help="print Markdown tables")
    pre = sub.add_parser("presets", help="every optimizer's defaults under each preset")
    pre.add_argument(
        "--markdown", action="store_true", help="one Markdown table of the differing defaults"
    )
    args = parser.parse_args(argv)
    if args.command in LAB_COMMANDS:
        try:
            return LAB_COMMANDS[args.command](args)
        except ValueError as error:  # bad names and values: one clear line, no traceback
            raise SystemExit(f"optimlab {args.command}: {error}") from None
    if args.command == "differences":
        from .differences import render

        print(render(markdown=args.markdown))
    elif args.command == "presets":
        print(_presets_markdown() if args.markdown else _presets_table())
    else:
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
