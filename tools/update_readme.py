"""Regenerate the README's measured sections from the commands that produce them.

Each generated block sits between ``<!-- BEGIN: <command> -->`` and ``<!-- END: <command> -->``
and holds exactly the command's output; ``tests/test_readme.py`` fails when one is stale.

    python tools/update_readme.py          # rewrite README.md in place
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- BEGIN: (.+?) -->\n)(.*?)(<!-- END: \2 -->)", re.S)


def command_output(command: str) -> str:
    """The stdout of ``optimlab ...`` (run in this process), ``python benchmarks/...`` or
    ``python -m optimlab.<module> ...`` (run as a script of the repository's ``src``)."""
    from optimlab.cli import main

    argv = shlex.split(command)
    script = argv[0] == "python" and len(argv) > 1 and argv[1].startswith("benchmarks/")
    module = argv[:2] == ["python", "-m"] and len(argv) > 2 and argv[2].startswith("optimlab.")
    if script or module:
        env = dict(os.environ)
        src = str(README.parent / "src")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, *argv[1:]],
            cwd=README.parent,
            capture_output=True,
            text=True,
            check=True,
            env=env if module else None,
        )
        return done.stdout.rstrip("\n") + "\n"
    if argv[0] != "optimlab":
        raise ValueError(f"only optimlab and benchmark commands are generated, got {command!r}")
    out = StringIO()
    with redirect_stdout(out):
        main(argv[1:])
    return out.getvalue().rstrip("\n") + "\n"


def regenerate(text: str) -> str:
    """``text`` with every generated block replaced by its command's current output."""
    return BLOCK.sub(lambda m: m.group(1) + command_output(m.group(2)) + m.group(4), text)


def blocks(text: str) -> list[tuple[str, str]]:
    """The (command, content) of every generated block."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


if __name__ == "__main__":
    README.write_text(regenerate(README.read_text()))
    sys.exit(0)
