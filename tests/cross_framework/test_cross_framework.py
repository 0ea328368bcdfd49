"""Issue 14, item 4: one model, three frameworks, one preset, the same numbers.

The digits MLP 64-16-10 of the tour's porting chapter, trained from the same initial weights on
the same batches (24 updates, the learning rate dropped after the 12th) in Keras 3 (JAX
backend, float64, ``train_on_batch``) with ``optimlab.keras.<X>(preset=P)``, in a torch loop
with ``optimlab.torch.<X>(preset=P)`` and in a ``jax.jit`` loop with
``optimlab.optax.<x>(preset=P)``, each framework computing its gradients by its own autodiff:
the final parameters agree pairwise within 1e-9 relative. The frameworks' own optimizers
(``keras.optimizers.Adam``, ``torch.optim.Adam``, ``optax.adam``, ...) with their default
numerics agree with the run of their preset; and the chapter's NumPy numbers are these
frameworks' numbers.

By default each optimizer runs with one preset (the presets in turn); ``HYPOTHESIS_PROFILE=
explore`` runs every optimizer x preset.
"""

import itertools

import pytest

for _module in ("torch", "keras", "jax", "optax"):
    pytest.importorskip(_module)

from optimlab.lab.experiments import porting  # noqa: E402

from . import _runs  # noqa: E402
from .conftest import DEVIATIONS  # noqa: E402

RTOL = porting.RTOL

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize(("optimizer", "preset"), _runs.cells())
def test_the_three_faces_agree(optimizer, preset):
    runs = {f: _runs.face_run(optimizer, preset, f) for f in _runs.frameworks_of(optimizer)}
    bad = []
    limit = _runs.LIMITS.get((optimizer, preset), RTOL)
    for a, b in itertools.combinations(runs, 2):
        gap = _runs.deviation(runs[a], runs[b])
        DEVIATIONS[optimizer, preset, f"{a} vs {b}"] = gap
        if not gap <= limit:
            bad.append(f"{a} vs {b}: {gap:.3g}")
    assert not bad, f"{optimizer} preset={preset}: {bad}"
    # the model trained at all: the parameters moved well beyond the tolerance
    first = porting.setup()[1]
    assert _runs.deviation(first.values(), runs["jax"]) > 1e-3


@pytest.mark.parametrize(("optimizer", "preset"), _runs.cells())
def test_the_peers_own_optimizer_is_its_preset(optimizer, preset):
    """keras.optimizers.<X> in Keras, torch.optim.<X> in torch, optax.<x> in JAX equal the
    optimlab run of the matching preset, in every framework."""
    if optimizer not in _runs.NATIVE[preset]:
        pytest.skip(f"{preset} has no {optimizer}")
    own = _runs.native_run(optimizer, preset)
    framework = {"optax": "jax"}.get(preset, preset)
    gaps = {
        f: _runs.deviation(_runs.face_run(optimizer, preset, f), own)
        for f in _runs.frameworks_of(optimizer)
    }
    DEVIATIONS[optimizer, preset, "own vs faces"] = max(gaps.values())
    limit = _runs.LIMITS.get((optimizer, preset), RTOL)
    bad = [f"{f}: {gap:.3g}" for f, gap in gaps.items() if not gap <= limit]
    assert not bad, f"{framework}'s own {optimizer} against optimlab's preset run: {bad}"


@pytest.mark.parametrize(("label", "base", "arguments"), porting.PORTED, ids=lambda v: str(v))
def test_the_chapters_numbers_are_the_frameworks_numbers(label, base, arguments):
    """The tour's porting chapter computes with the NumPy dialect; each of its runs equals the
    framework's own optimizer with the chapter's arguments in that framework."""
    arguments = dict(arguments)
    lr = arguments.pop("learning_rate")
    for preset in porting.FRAMEWORKS:
        chapter = porting.ported(base, {"learning_rate": lr, **arguments}, preset)
        own = _runs.native_run(base, preset, lr, **arguments)
        gap = _runs.deviation(own, [chapter.params[k] for k in _runs.NAMES])
        DEVIATIONS[f"chapter: {label}", preset, "chapter vs own"] = gap
        assert gap <= RTOL, f"{label} preset={preset}: the chapter's run is {gap:.3g} away"
    # the check can fail: the frameworks' own optimizers differ from one another
    own = {p: _runs.native_run(base, p, lr, **arguments) for p in porting.FRAMEWORKS}
    assert _runs.deviation(own["torch"], own["keras"]) > 1e-6


def test_matrix_lines_give_each_framework_its_largest_deviation():
    """``--matrix``: per optimizer x preset, a framework's cell is the largest comparison that
    involves its face (own: the peer's optimizer against the faces), "-" where none does."""
    from .__main__ import matrix_lines

    saved = {
        "model": "m",
        "measure": "x",
        "versions": {"jax": "0"},
        "largest": 3e-15,
        "comparisons": 5,
        "deviations": {
            "Adam": {
                "keras": {
                    "keras vs torch": 1e-16,
                    "keras vs jax": 2e-16,
                    "torch vs jax": 3e-15,
                    "own vs faces": 4e-16,
                }
            },
            "Lamb": {"optax": {"keras vs jax": 5e-16}},
        },
    }
    rows = [line for line in matrix_lines(saved) if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| optimizer | preset | keras face | torch face | jax face | peer's own |"
    assert rows[1:] == [
        "| Adam | keras | 2.0e-16 | 3.0e-15 | 3.0e-15 | 4.0e-16 |",
        "| Lamb | optax | 5.0e-16 | - | 5.0e-16 | - |",
    ]
