"""The ``optimlab`` command line.

optimlab tour [--out DIR] [--quick]   the lecture as an HTML report (every chapter an experiment)
optimlab compare --on NAME ...         optimizers on a surface or data problem: a figure
optimlab fit --problem NAME ...        batch / stochastic / mini-batch training of one optimizer
optimlab sweep --surface NAME ...      learning-rate sweeps: sensitivity curves, tuned rates
optimlab play [--port N] [--no-browser] the live page: scenes to touch, optimlab behind every path
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
    """The tour's output folder flag: new, empty, or an earlier tour's (whose files it
    replaces), in a place that can be written."""
    from .report.tour import foreign_files

    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"must be a folder, {text!r} is a file")
    _writable_parent(os.path.join(text, "index.html"))
    foreign = foreign_files(text)
    if foreign:
        raise argparse.ArgumentTypeError(
            f"{text!r} holds files a tour does not write ({', '.join(map(repr, foreign[:3]))}"
            f"{', ...' if foreign[3:] else ''}); choose a new or empty folder, or one an "
            "earlier tour wrote"
        )
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

    return presets.peer(name, preset) or f"(no {preset} {name}: {preset} conventions)"


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
            peer = presets.peer(name, p)
            cells.append((f"`{peer}`" if peer else _peer(name, p)) + f"<br>{values}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _wrapped(title: str, names) -> str:
    """``title``: then the names, comma-separated and wrapped at 88 columns, indented."""
    import textwrap

    return f"{title}:\n" + textwrap.fill(
        ", ".join(names), width=88, initial_indent="  ", subsequent_indent="  "
    )


def _names_epilog(*kinds: str) -> str:
    """The valid names a command takes, for its ``--help``: surfaces, problems, chapters
    and optimizers, each list from the registry the command itself checks against."""
    from .lab import contenders, experiments, problems, surfaces

    lists = {
        "surfaces": ("surfaces (--on, --surface)", surfaces.SURFACES),
        "problems": ("data problems (--on, --problem)", problems.PROBLEMS),
        "chapters": ("chapters (--only), in the lecture's order", experiments.EXPERIMENTS),
        "optimizers": (
            "optimizers (lab names; 'Name:key=value,...' sets hyperparameters)",
            contenders.CONTENDERS,
        ),
    }
    return "\n\n".join(_wrapped(*lists[kind]) for kind in kinds)


def _lab_parser(sub, name: str, help: str, *lists: str) -> argparse.ArgumentParser:
    """A lab sub-command whose ``--help`` shows every default and the names it takes."""
    return sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=_names_epilog(*lists),
        formatter_class=_HelpFormatter,
    )


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every flag's default after its help (a list as its words, none for an unset flag or
    a switch, whose help says what happens then); the epilog's name lists kept as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if default is None or isinstance(default, bool) or default is argparse.SUPPRESS:
            return text
        if "(default" in text or not action.option_strings:
            return text
        if isinstance(default, list | tuple):
            default = " ".join(map(str, default))
        elif hasattr(default, "shape"):  # a parsed grid: its flag's text is not kept
            return text
        return f"{text} (default: {str(default).replace('%', '%%')})"


def _add_lab_commands(sub) -> dict[str, argparse.ArgumentParser]:
    tour = _lab_parser(
        sub, "tour", "run every chapter of the lecture and write the HTML report", "chapters"
    )
    tour.add_argument(
        "--out",
        type=_folder,
        default="optimlab-tour",
        help="report folder: new, empty, or one an earlier tour wrote",
    )
    tour.add_argument("--quick", action="store_true", help="small grids and short horizons")
    tour.add_argument(
        "--only", nargs="+", metavar="CHAPTER", help="run only these chapters (default: all)"
    )
    tour.add_argument("--no-progress", action="store_true", help="no progress bar")

    compare = _lab_parser(
        sub,
        "compare",
        "optimizers on a surface or a data problem, as one figure",
        "surfaces",
        "problems",
        "optimizers",
    )
    compare.add_argument("--on", default="rosenbrock", help="a surface or a data problem")
    compare.add_argument(
        "--optimizers",
        nargs="+",
        default=["SGD", "Momentum", "NAG", "RMSprop", "Adam"],
        metavar="OPTIMIZER",
        help="lab names or 'Name:key=value,...'",
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
    compare.add_argument("--seed", type=_count(0), default=0, help="random seed")
    compare.add_argument(
        "--out",
        type=FIGURE,
        help="figure file (.png, .svg, .pdf); overwritten if it exists (default: compare.png, "
        "or compare-2.png, ... if that exists)",
    )
    compare.add_argument(
        "--animate", type=ANIMATION, metavar="GIF", help="also write an animation (.gif, .mp4)"
    )

    fit = _lab_parser(sub, "fit", "train one optimizer on a data problem", "problems", "optimizers")
    fit.add_argument("--problem", default="linear", help="a data problem")
    fit.add_argument("--optimizer", default="SGD", help="lab name or 'Name:key=value,...'")
    fit.add_argument("--lr", type=_real(0), default=0.01, help="learning rate")
    fit.add_argument("--epochs", type=_count(1), default=10, help="passes over the data")
    fit.add_argument(
        "--batch-size",
        type=_batch_size,
        default="none",
        help="'none' = batch GD, 1 = stochastic, k = mini-batch",
    )
    fit.add_argument("--seed", type=_count(0), default=0, help="random seed")
    fit.add_argument("--out", type=FIGURE, help="loss-curve figure file (.png, .svg, .pdf)")

    sweep = _lab_parser(
        sub,
        "sweep",
        "learning-rate sweeps of optimizers on a surface",
        "surfaces",
        "optimizers",
    )
    sweep.add_argument("--surface", default="rosenbrock", help="a surface")
    sweep.add_argument(
        "--optimizers",
        nargs="+",
        metavar="OPTIMIZER",
        help="lab names (default: the ten of the verdict)",
    )
    sweep.add_argument("--steps", type=_count(1), default=500, help="updates per run")
    sweep.add_argument(
        "--lrs",
        type=_log_grid_flag,
        default="1e-5:1e2:36",
        help="log grid LOW:HIGH:COUNT",
    )
    sweep.add_argument("--seeds", type=_count(1), default=1, help="seeds (with --noise)")
    sweep.add_argument("--noise", type=_real(0), default=0.0, help="gradient noise std")
    sweep.add_argument(
        "--out",
        type=FIGURE,
        help="sensitivity figure file; overwritten if it exists (default: sweep.png, or "
        "sweep-2.png, ... if that exists)",
    )
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
    chapters = len(json.loads((Path(args.out) / "timings.json").read_text()))
    print(
        f"wrote {index} ({chapters} chapter{'' if chapters == 1 else 's'} "
        f"in {time.perf_counter() - start:.1f} s)"
    )
    return 0


def _fresh_name(default: str) -> str:
    """``default`` if no file has that name, else the first free ``stem-2.ext``,
    ``stem-3.ext``, ...: a command run twice without ``--out`` keeps the earlier figure."""
    stem, suffix = os.path.splitext(default)
    name, n = default, 1
    while os.path.lexists(name):
        n += 1
        name = f"{stem}-{n}{suffix}"
    return name


def _output(args, default: str) -> str:
    """The figure file a command writes: ``--out`` as given (overwritten, the user named it)
    or a free name derived from ``default``; checked before any work."""
    if args.out is not None:
        return args.out
    name = _fresh_name(default)
    FIGURE(name)  # the current folder must be writable: argparse's error otherwise
    return name


def _run_compare(args) -> int:
    from .lab import compare

    kind, target = _target(args.on)
    if args.animate and kind != "surface":
        raise _FlagError("--animate", "draws paths on a surface; --on names a data problem")
    _optimizer_specs(args.optimizers, "--optimizers", args.lr or 0.01)
    out = _output(args, "compare.png")
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
    result.save(out)
    print(f"wrote {out}")
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
    out = _output(args, "sweep.png")
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
    result.save(out)
    print(f"wrote {out}")
    return 0


def _add_play_command(sub) -> argparse.ArgumentParser:
    from .play import SCENES

    play = sub.add_parser(
        "play",
        help="the lecture you can touch: a local web page, optimlab computing every path",
        description="Start the playground on this machine and open it in the browser.\n"
        "Every asset is served from the installed package: it works with no network.",
        formatter_class=_HelpFormatter,
    )
    play.add_argument("--port", type=_port, default=8765, help="TCP port")
    play.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (another than this machine's loopback lets others connect)",
    )
    play.add_argument("--no-browser", action="store_true", help="do not open a browser")
    play.add_argument("--scene", choices=SCENES, help="the scene the browser opens on")
    play.add_argument(
        "--tour",
        default="optimlab-tour",
        metavar="DIR",
        help="an optimlab tour report to serve at /tour/ (the page links to it)",
    )
    return play


def _port(text: str) -> int:
    """A TCP port number, 1..65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, 65535], got {text!r}")
    return value


def _run_play(args) -> int:
    from .play import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"optimlab play: listening on {args.host}: anyone who can reach this machine there "
            "can use the page",
            file=sys.stderr,
        )
    try:
        return serve(
            args.host,
            args.port,
            open_browser=not args.no_browser,
            scene=args.scene,
            tour_dir=args.tour,
        )
    except OSError as error:  # the port is taken, or the address is not this machine's
        raise _FlagError("--port" if "port" in str(error) else "--host", str(error)) from None


LAB_COMMANDS = {
    "tour": _run_tour,
    "compare": _run_compare,
    "fit": _run_fit,
    "sweep": _run_sweep,
    "play": _run_play,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``optimlab`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="optimlab",
        description="The optimizers of deep learning, exact and fast: a library and a lab.",
        epilog="Each command's --help lists its flags with their defaults and the names it "
        "takes.\n\n" + _names_epilog("surfaces", "problems", "chapters", "optimizers"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"optimlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = _add_lab_commands(sub)
    commands["play"] = _add_play_command(sub)
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
