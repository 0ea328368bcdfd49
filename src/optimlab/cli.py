"""The ``optimlab`` command line.

optimlab differences [--markdown]   where PyTorch, Keras and optax differ, measured
optimlab presets [--markdown]       every optimizer's defaults under each preset
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``optimlab`` command."""
    parser = argparse.ArgumentParser(
        prog="optimlab",
        description="The optimizers of deep learning, exact and fast: a library and a lab.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    diff = sub.add_parser(
        "differences", help="where PyTorch, Keras and optax differ, each with a measured example"
    )
    diff.add_argument("--markdown", action="store_true", help="print Markdown tables")
    pre = sub.add_parser("presets", help="every optimizer's defaults under each preset")
    pre.add_argument(
        "--markdown", action="store_true", help="one Markdown table of the differing defaults"
    )
    args = parser.parse_args(argv)
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
