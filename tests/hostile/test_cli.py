"""The ``optimlab`` command line with bad flags and values: argparse's error (usage, then
``optimlab <command>: error: argument --flag: ...``), exit code 2, no traceback, no file
written, before any work."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimlab.cli import main

from .world import CASES


def _refused(argv, flag, capsys, folder, says=()):
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Traceback" not in err
    assert f"error: argument {flag}" in err or (flag in err and "error:" in err), err
    for fragment in says:
        assert fragment in err, err
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
    CASES["refused"] += 1


BAD = [
    (["compare", "--steps", "-5"], "--steps", ["'-5'", ">= 1"]),
    (["compare", "--steps", "0"], "--steps", []),
    (["compare", "--steps", "1e3"], "--steps", []),
    (["compare", "--steps", "10**400"], "--steps", []),
    (["compare", "--epochs", "0", "--on", "linear"], "--epochs", []),
    (["compare", "--batch-size", "0", "--on", "linear"], "--batch-size", []),
    (["compare", "--lr", "nan"], "--lr", ["'nan'", "finite"]),
    (["compare", "--lr", "-1"], "--lr", [">= 0"]),
    (["compare", "--lr", "inf"], "--lr", []),
    (["compare", "--start", "nan", "1"], "--start", []),
    (["compare", "--start", "1"], "--start", []),
    (["compare", "--seed", "-1"], "--seed", []),
    (["compare", "--on", "moon"], "--on", ["'moon'", "surfaces:"]),
    (["compare", "--optimizers", "Adamm"], "--optimizers", ["'Adamm'"]),
    (["compare", "--optimizers", "Adam:beta_1=2"], "--optimizers", ["beta_1", "[0, 1)"]),
    (["compare", "--optimizers", "Adam:foo=1"], "--optimizers", ["'foo'"]),
    (["compare", "--optimizers", "Adam:beta_1"], "--optimizers", ["key=value"]),
    (["compare", "--out", "c.txt"], "--out", [".png"]),
    (["compare", "--out", "."], "--out", []),
    (["compare", "--animate", "c.png"], "--animate", [".gif"]),
    (["compare", "--on", "linear", "--animate", "c.gif"], "--animate", ["surface"]),
    (["fit", "--batch-size", "abc"], "--batch-size", ["'abc'"]),
    (["fit", "--batch-size", "100000"], "--batch-size", ["[1, 500]"]),
    (["fit", "--epochs", "-1"], "--epochs", []),
    (["fit", "--lr", "inf"], "--lr", []),
    (["fit", "--problem", "nope"], "--problem", ["'nope'", "valid:"]),
    (["fit", "--optimizer", "Adam:foo=1"], "--optimizer", ["'foo'"]),
    (["fit", "--optimizer", "Nadam:momentum_decay=-1"], "--optimizer", ["momentum_decay"]),
    (["fit", "--out", "loss.jpg"], "--out", []),
    (["sweep", "--lrs", "1:2"], "--lrs", ["LOW:HIGH:COUNT"]),
    (["sweep", "--lrs", "1e-3:1e2:1"], "--lrs", []),
    (["sweep", "--lrs", "1e2:1e-3:5"], "--lrs", []),
    (["sweep", "--lrs", "0:1:5"], "--lrs", []),
    (["sweep", "--lrs", "1e-3:inf:5"], "--lrs", []),
    (["sweep", "--seeds", "0"], "--seeds", []),
    (["sweep", "--noise", "-0.5"], "--noise", []),
    (["sweep", "--noise", "nan"], "--noise", []),
    (["sweep", "--surface", "linear"], "--surface", ["surfaces"]),
    (["sweep", "--optimizers", "Adam:lr=1"], "--optimizers", ["'lr'"]),
    (["sweep", "--out", "s.gif"], "--out", []),
    (["tour", "--only", "nope"], "--only", ["'nope'"]),
    (["tour", "--out", "afile.txt"], "--out", ["is a file"]),
    (["tour", "--out", "."], "--out", ["'afile.txt'", "does not write"]),
    (["presets", "--markdown", "extra"], "extra", []),
    (["nope"], "invalid choice", []),
    (["fit", "--unknown-flag"], "--unknown-flag", []),
]


@pytest.mark.parametrize("argv,flag,says", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_flags(argv, flag, says, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile.txt").write_text("keep")
    _refused(argv, flag, capsys, tmp_path, says)
    assert (tmp_path / "afile.txt").read_text() == "keep"


def _valid_int(text, low):
    try:
        return int(text) >= low
    except ValueError:
        return False


def _valid_float(text, low):
    try:
        x = float(text)
    except ValueError:
        return False
    return math.isfinite(x) and (low is None or x >= low)


FLAGS = [
    ("compare", "--steps", lambda t: _valid_int(t, 1)),
    ("fit", "--epochs", lambda t: _valid_int(t, 1)),
    ("sweep", "--seeds", lambda t: _valid_int(t, 1)),
    ("fit", "--seed", lambda t: _valid_int(t, 0)),
    ("fit", "--lr", lambda t: _valid_float(t, 0.0)),
    ("sweep", "--noise", lambda t: _valid_float(t, 0.0)),
    ("fit", "--batch-size", lambda t: t.strip().lower() == "none" or _valid_int(t, 1)),
]

TEXT = st.one_of(
    st.text(max_size=6),
    st.sampled_from(
        ["nan", "-inf", "inf", "1e999", "-0", "0x10", "1_000", " 3", "3.0", "-1", "0", "²"]
    ),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@pytest.mark.parametrize("command,flag,valid", FLAGS, ids=[f"{c} {f}" for c, f, _ in FLAGS])
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_hostile_flag_values(command, flag, valid, text, capsys, tmp_path, monkeypatch):
    """Every value a flag refuses is argparse's error; valid ones are not run here (they
    would start the work)."""
    if valid(text):
        return  # a valid value (``--flag=value``: argparse never reads it as another flag)
    monkeypatch.chdir(tmp_path)
    _refused([command, f"{flag}={text}"], flag, capsys, tmp_path)
