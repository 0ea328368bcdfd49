"""The ``optimlab`` command line.

optimlab differences [--markdown]   where PyTorch, Keras and optax differ, measured
optimlab presets                    every optimizer's defaults under each preset
"""

from __future__ import annotations

import argparse
import sys


def _presets_table() -> str:
    from . import presets

    lines = []
    for name, per_preset in presets.DEFAULTS.items():
        lines.append(f"== {name}")
        keys = list(per_preset["keras"])
        width = max(len(k) for k in keys)
        lines.append("  " + "".ljust(width) + "".join(p.ljust(14) for p in presets.PRESETS))
        for key in keys:
            cells = "".join(repr(per_preset[p].get(key)).ljust(14) for p in presets.PRESETS)
            lines.append("  " + key.ljust(width) + cells)
        peers = "".join(str(presets.PEERS[name][p]).ljust(14) for p in presets.PRESETS)
        lines.append("  " + "peer".ljust(width) + peers)
        lines.append("")
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
    sub.add_parser("presets", help="every optimizer's defaults under each preset")
    args = parser.parse_args(argv)
    if args.command == "differences":
        from .differences import render

        print(render(markdown=args.markdown))
    elif args.command == "presets":
        print(_presets_table())
    else:
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
