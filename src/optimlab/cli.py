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
import math
import os
import sys

# -- flag values: argparse ``type=`` functions, so that a bad value is argparse's own error
# ("optimlab fit: error: argument --epochs: ...", exit code 2) before any work or file


def _count(low: int):
    """An integer flag >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _real(low: float | None = None):
    """A finite float flag (>= ``low`` if given)."""
    what = "a finite number" if low is None else f"a finite number >= {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and value < low):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


def _batch_size(text: str) -> int | None:
    """'none' (batch gradient descent) or an integer >= 1."""
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 'none' or an integer >= 1, got {text!r}")
    return value


def _writable_parent(path: str) -> None:
    """The nearest existing folder above ``path`` must be a writable folder (the rest is
    created when the file is written)."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(
            f"cannot write {path!r}: {parent!r} is not a writable folder"
        )


def _file(*suffixes: str):
    """An output file flag with one of ``suffixes``, in a folder that can be written."""

    def parse(text: str) -> str:
        if os.path.splitext(text)[1].lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"must be a file name ending in {', '.join(suffixes)}, got {text!r}"
            )
        if os.path.isdir(text):
            raise argparse.ArgumentTypeError(f"must be a file, {text!r} is a folder")
        _writable_parent(text)
        return text

    parse.__name__ = f"{'/'.join(suffixes)} file"
    return parse


def _folder(text: str) -> str:
    """An output folder flag: an existing folder or one that can be created."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"must be a folder, {text!r} is a file")
    _writable_parent(os.path.join(text, "index.html"))
    return text


def _log_grid_flag(text: str):
    """LOW:HIGH:COUNT, 0 < LOW < HIGH finite, COUNT >= 2: a log-spaced grid."""
    import numpy as np

    what = f"must look like LOW:HIGH:COUNT with 0 < LOW < HIGH and COUNT >= 2, got {text!r}"
    try:
        low, high, count = text.split(":")
        low, high, count = float(low), float(high), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(what) from None
    if not (0 < low < high < math.inf) or count < 2:
        raise argparse.ArgumentTypeError(what)
    return np.logspace(np.log10(low), np.log10(high), count)


FIGURE = _file(".png", ".svg", ".pdf")
ANIMATION = _file(".gif", ".mp4")


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


def _add_lab_commands(sub) -> dict[str, argparse.ArgumentParser]:
    tour = sub.add_parser("tour", help="run every chapter of the lecture and write the HTML report")
    tour.add_argument(
        "--out", type=_folder, default="optimlab-tour", help="report folder (default: %(default)s)"
    )
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
    compare.add_argument("--steps", type=_count(1), default=500, help="updates (surfaces)")
    compare.add_argument("--epochs", type=_count(1), default=20, help="epochs (data problems)")
    compare.add_argument(
        "--batch-size", type=_batch_size, default=32, help="'none' or k >= 1 (data problems)"
    )
    compare.add_argument(
        "--lr", type=_real(0), help="one learning rate for all (default: each tuned on a log grid)"
    )
    compare.add_argument("--start", type=_real(), nargs=2, metavar=("X", "Y"), help="start point")
    compare.add_argument("--seed", type=_count(0), default=0)
    compare.add_argument(
        "--out", type=FIGURE, default="compare.png", help="figure file (.png, .svg, .pdf)"
    )
    compare.add_argument(
        "--animate", type=ANIMATION, metavar="GIF", help="also write an animation (.gif, .mp4)"
    )

    fit = sub.add_parser("fit", help="train one optimizer on a data problem")
    fit.add_argument("--problem", default="linear", help="data problem name")
    fit.add_argument("--optimizer", default="SGD", help="lab name or 'Name:key=value,...'")
    fit.add_argument("--lr", type=_real(0), default=0.01, help="learning rate")
    fit.add_argument("--epochs", type=_count(1), default=10)
    fit.add_argument(
        "--batch-size",
        type=_batch_size,
        default="none",
        help="'none' = batch GD, 1 = stochastic, k = mini-batch (default: %(default)s)",
    )
    fit.add_argument("--seed", type=_count(0), default=0)
    fit.add_argument("--out", type=FIGURE, help="loss-curve figure file (.png, .svg, .pdf)")

    sweep = sub.add_parser("sweep", help="learning-rate sweeps of optimizers on a surface")
    sweep.add_argument("--surface", default="rosenbrock", help="surface name")
    sweep.add_argument(
        "--optimizers", nargs="+", help="lab names (default: the ten of the verdict)"
    )
    sweep.add_argument("--steps", type=_count(1), default=500)
    sweep.add_argument(
        "--lrs",
        type=_log_grid_flag,
        default="1e-5:1e2:36",
        help="log grid LOW:HIGH:COUNT (default: %(default)s)",
    )
    sweep.add_argument("--seeds", type=_count(1), default=1, help="seeds (with --noise)")
    sweep.add_argument("--noise", type=_real(0), default=0.0, help="gradient noise std")
    sweep.add_argument("--out", type=FIGURE, default="sweep.png", help="sensitivity figure file")
    return {"tour": tour, "compare": compare, "fit": fit, "sweep": sweep}


class _FlagError(ValueError):
    """A flag whose value the command cannot use, found before any work: argparse's error."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"argument {flag}: {message}")


def _target(name: str, flag: str = "--on"):
    """A surface or a data problem by name (listing both kinds when unknown)."""
    from .lab import problems, surfaces

    if name in surfaces.SURFACES:
        return "surface", surfaces.get(name)
    if name in problems.PROBLEMS:
        return "problem", problems.get(name)
    raise _FlagError(
        flag,
        f"unknown surface or problem {name!r}; surfaces: {', '.join(surfaces.SURFACES)}; "
        f"problems: {', '.join(problems.PROBLEMS)}",
    )


def _optimizer_specs(specs, flag: str, learning_rate: float = 0.01):
    """Resolve each optimizer spec and build it once, so that a bad name or hyperparameter is
    a flag error before any work."""
    from . import optimizers
    from .lab.contenders import resolve

    resolved = []
    for spec in specs:
        try:
            label, base, kwargs = resolve(spec)
            kwargs.setdefault("learning_rate", learning_rate)
            optimizers.get(base, **kwargs)
        except (TypeError, ValueError) as error:
            raise _FlagError(flag, f"{spec!r}: {error}") from None
        resolved.append((label, base, kwargs))
    return resolved


def _run_tour(args) -> int:
    import json
    import time
    from pathlib import Path

    from .lab import experiments
    from .report import write_tour

    for key in args.only or ():
        if key not in experiments.EXPERIMENTS:
            raise _FlagError(
                "--only",
                f"unknown experiment {key!r}; valid: {', '.join(experiments.EXPERIMENTS)}",
            )
    start = time.perf_counter()
    index = write_tour(args.out, args.only, quick=args.quick, progress=not args.no_progress)
    timings = json.loads((Path(args.out) / "timings.json").read_text())
    print(f"wrote {index} ({len(timings)} chapters in {time.perf_counter() - start:.1f} s)")
    return 0


def _run_compare(args) -> int:
    from .lab import compare

    kind, target = _target(args.on)
    if args.animate and kind != "surface":
        raise _FlagError("--animate", "draws paths on a surface; --on names a data problem")
    _optimizer_specs(args.optimizers, "--optimizers", args.lr or 0.01)
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
        result.animate(args.animate)
        print(f"wrote {args.animate}")
    return 0


def _run_fit(args) -> int:
    from . import optimizers
    from .lab import problems, training

    if args.problem not in problems.PROBLEMS:
        raise _FlagError(
            "--problem",
            f"unknown problem {args.problem!r}; valid: {', '.join(problems.PROBLEMS)}",
        )
    batch = args.batch_size
    [(label, base, kwargs)] = _optimizer_specs([args.optimizer], "--optimizer", args.lr)
    problem = problems.get(args.problem)
    if batch is not None and batch > problem.n_samples:
        raise _FlagError(
            "--batch-size",
            f"must be 'none' or an integer in [1, {problem.n_samples}] (the rows of "
            f"{args.problem}), got {batch}",
        )
    opt = optimizers.get(base, **kwargs)
    history = training.fit(problem, opt, epochs=args.epochs, batch_size=batch, seed=args.seed)
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

    _, surface = _target(args.surface, "--surface")
    if not hasattr(surface, "gradient"):
        raise _FlagError("--surface", "sweep runs on surfaces; use compare for data problems")
    if args.optimizers:
        _optimizer_specs(args.optimizers, "--optimizers")
    start = time.perf_counter()
    result = compare.sensitivity(
        surface,
        args.optimizers,
        learning_rates=args.lrs,
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
    commands = _add_lab_commands(sub)
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
        except (TypeError, ValueError) as error:  # bad names and values: argparse's error
            commands[args.command].error(str(error))  # usage, the message, exit code 2
        except OSError as error:  # a file that cannot be written: one line, no traceback
            raise SystemExit(f"optimlab {args.command}: error: {error}") from None
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
