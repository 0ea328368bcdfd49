"""The ``optimlab`` command line."""

from __future__ import annotations

import pytest

from optimlab import OPTIMIZERS, differences
from optimlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_presets_lists_every_optimizer_with_its_three_peers(capsys):
    code, out = run(capsys, "presets")
    assert code == 0
    for name in OPTIMIZERS:
        assert f"== {name}" in out
    assert "torch.optim.Adam " in out and "keras.optimizers.Adam " in out
    # columns are aligned: the three preset names start at the same offsets in every header
    headers = [line for line in out.splitlines() if line.strip().startswith("keras")]
    assert headers and all("torch" in h and "optax" in h for h in headers)


def test_presets_markdown_lists_only_differing_defaults(capsys):
    code, out = run(capsys, "presets", "--markdown")
    assert code == 0
    adam = next(line for line in out.splitlines() if line.startswith("| Adam |"))
    assert "epsilon=1e-07" in adam and "epsilon=1e-08" in adam
    assert "beta_1" not in adam  # 0.9 in every preset


def test_differences_prints_every_difference(capsys):
    code, out = run(capsys, "differences")
    assert code == 0
    for d in differences.DIFFERENCES:
        assert d.title in out
    code, md = run(capsys, "differences", "--markdown")
    assert md.count("\n### ") + md.startswith("### ") == len(differences.DIFFERENCES)


def test_no_command_prints_help_and_fails(capsys):
    code, out = run(capsys)
    assert code == 2 and "differences" in out


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit) as info:
        main(["tour-de-france"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_version(capsys):
    from optimlab import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"optimlab {__version__}"


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrapped


def test_help_lists_every_name_each_command_takes(capsys):
    from optimlab.lab import contenders, experiments, problems, surfaces

    top = _help(capsys)
    for name in [*surfaces.SURFACES, *problems.PROBLEMS, *experiments.EXPERIMENTS]:
        assert name in top
    assert "chapters (--only)" in _help(capsys, "tour")
    compare = _help(capsys, "compare")
    assert all(name in compare for name in [*surfaces.SURFACES, *problems.PROBLEMS])
    assert all(name in compare for name in contenders.CONTENDERS)
    fit = _help(capsys, "fit")
    assert "linear" in fit and "rosenbrock" not in fit  # fit takes data problems only
    sweep = _help(capsys, "sweep")
    assert "rosenbrock" in sweep and "digits_mlp" not in sweep  # sweep takes surfaces only


@pytest.mark.parametrize(
    "command,says",
    [
        (
            "compare",
            [
                "--on ON a surface or a data problem (default: rosenbrock)",
                "(default: SGD Momentum NAG RMSprop Adam)",
                "(default: 500)",
                "(default: 32)",
            ],
        ),  # fmt: skip
        ("fit", ["(default: linear)", "(default: none)", "(default: 0.01)", "(default: 10)"]),
        ("sweep", ["(default: 1e-5:1e2:36)", "(default: rosenbrock)", "(default: 500)"]),
        ("tour", ["(default: optimlab-tour)", "(default: all)"]),
    ],
)
def test_help_shows_defaults(command, says, capsys):
    text = _help(capsys, command)
    for fragment in says:
        assert fragment in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_compare_without_out_keeps_an_existing_figure(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compare.png").write_bytes(b"mine")
    argv = ["compare", "--steps", "5", "--lr", "0.01", "--optimizers", "SGD"]
    assert main(argv) == 0
    assert "wrote compare-2.png" in capsys.readouterr().out
    assert main(argv) == 0
    assert "wrote compare-3.png" in capsys.readouterr().out
    assert (tmp_path / "compare.png").read_bytes() == b"mine"
    assert main([*argv, "--out", "compare.png"]) == 0  # named: the user asked for it
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_without_out_keeps_an_existing_figure(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.png").write_bytes(b"mine")
    argv = ["sweep", "--steps", "5", "--lrs", "1e-3:1e-2:2", "--optimizers", "SGD"]
    assert main(argv) == 0
    assert "wrote sweep-2.png" in capsys.readouterr().out
    assert (tmp_path / "sweep.png").read_bytes() == b"mine"


def test_tour_reuses_its_own_folder_and_says_chapter_in_the_singular(capsys, tmp_path):
    out = tmp_path / "t"
    argv = ["tour", "--only", "ewma", "--quick", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert "(1 chapter in " in capsys.readouterr().out
    assert main(argv) == 0  # an earlier tour's folder: its files are replaced
    (out / "figures" / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "'figures/mine.txt'" in capsys.readouterr().err
    assert (out / "figures" / "mine.txt").read_text() == "keep"


def test_write_tour_refuses_a_folder_of_other_files(tmp_path):
    from optimlab.report import write_tour

    (tmp_path / "thesis.tex").write_text("keep")
    with pytest.raises(ValueError, match="'thesis.tex'"):
        write_tour(tmp_path, ["ewma"], quick=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
