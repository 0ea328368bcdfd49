"""The quality experiment of 8-bit and bfloat16 Adam state (issue 16): its runs are what they
say (float32 state is plain Adam, narrow state really is narrow and changes the run, the same
seed gives the same run, both engines give the same int8 run), its measurements of the
formats count what they say, and its entry points refuse nonsense."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import optimlab as ol
from optimlab import quantization
from optimlab.lab.experiments import quantized_state as Q


def _plain_adam_run(name: str, epochs: int, seed: int):
    """The same training written out here: float32 parameters, the experiment's batches,
    optimlab.Adam at its defaults (learning rate 1e-3) with no state_dtype argument."""
    problem = Q.model(name)
    train_rows, _ = Q.split(problem.n_samples, seed)
    params = {k: v.astype(np.float32) for k, v in problem.init_params(seed).items()}
    opt = ol.Adam(learning_rate=1e-3)
    for epoch in Q.batches(train_rows, epochs, seed):
        for rows in epoch:
            _, grads = problem.loss_and_grad(params, rows)
            opt.apply_gradients([(grads[k].astype(np.float32), params[k]) for k in params])
    return params


@pytest.fixture(scope="module")
def one_epoch():
    """:func:`quality` of one epoch: both models, each state dtype (shared by the tests)."""
    return Q.quality(epochs=1)


def test_float32_state_is_plain_adam_bit_for_bit(one_epoch):
    run = one_epoch.comparisons["mlp"].runs["float32"]
    plain = _plain_adam_run("mlp", 1, 0)
    for k, value in plain.items():
        assert run.params[k].dtype == np.float32
        assert np.array_equal(run.params[k], value), k


def test_int8_state_is_narrow_where_it_should_be_and_changes_the_run(one_epoch):
    f32 = one_epoch.comparisons["mlp"].runs["float32"]
    i8 = one_epoch.comparisons["mlp"].runs["int8"]
    slots = i8.state["slots"]
    assert slots["m/0"].dtype == np.uint8 and slots["v/0"].dtype == np.uint8  # W1, 8192
    assert slots["m.scales/0"].shape == (8192 // 256,)
    assert all(slots[f"m/{i}"].dtype == np.float32 for i in (1, 2, 3))  # b1, W2, b2
    assert one_epoch.comparisons["mlp"].narrow == [("W1", (64, 128))]
    assert one_epoch.comparisons["cnn"].narrow == [("W", (432, 10))]
    assert Q.narrow_tensors(f32, Q.model("mlp")) == []
    bf16 = one_epoch.comparisons["cnn"].runs["bfloat16"].state["slots"]
    assert bf16["v/2"].dtype == np.uint16 and bf16["v/0"].dtype == np.float32
    for c in one_epoch.comparisons.values():
        for d in ("bfloat16", "int8"):
            assert all(not np.array_equal(c.runs[d].params[k], c.runs["float32"].params[k])
                       for k, _ in c.narrow), (c.model, d)  # fmt: skip
            assert c.runs[d].losses[0] == c.runs["float32"].losses[0]
            assert c.gap_abs[d] > 0


def test_the_same_seed_gives_the_same_run_and_another_seed_another(one_epoch):
    a = one_epoch.comparisons["mlp"].runs["int8"]
    b = Q.train("mlp", "int8", epochs=1, seed=0)
    c = Q.train("mlp", "int8", epochs=1, seed=4)
    assert np.array_equal(a.losses, b.losses) and np.array_equal(a.accuracies, b.accuracies)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_both_engines_give_the_same_int8_run(one_epoch):
    fused = one_epoch.comparisons["mlp"].runs["int8"]  # engine "auto": fused for float32
    assert fused.state["config"]["engine"] == "auto"
    reference = Q.train("mlp", "int8", epochs=1, engine="reference")
    for k in fused.params:
        assert np.array_equal(fused.params[k], reference.params[k]), k


def test_quality_compares_against_float32_and_counts_the_narrow_share(one_epoch, tmp_path, capsys):
    mlp = one_epoch.comparisons["mlp"]
    assert mlp.gap_abs["float32"] == 0.0 and mlp.gap_rel["float32"] == 0.0
    f32, i8 = mlp.runs["float32"].losses, mlp.runs["int8"].losses
    assert mlp.gap_abs["int8"] == np.max(np.abs(i8 - f32)) > 0
    assert mlp.gap_rel["int8"] == np.max(np.abs(i8 - f32) / f32)
    assert mlp.narrow_share == 8192 / (8192 + 128 + 1280 + 10)
    assert one_epoch.comparisons["cnn"].narrow_share == 4320 / (432 + 48 + 4320 + 10)
    table = one_epoch.as_json()
    assert len(table["rows"]) == 8 and table["columns"] == list(Q.COLUMNS)
    text = Q.markdown(table)
    assert text.count("\n| ") == 8 and "| W1 64x128 |" in text and "| none |" in text
    saved = tmp_path / "q.json"
    saved.write_text(json.dumps(table))
    assert Q.main(["--table-from", str(saved)]) == 0
    assert capsys.readouterr().out.strip() == text.strip()


@given(
    arrays(
        np.float32,
        st.integers(1, 600),
        elements=st.floats(0, 1e3, width=32, allow_subnormal=False)
        | st.sampled_from([0.0, 1e-30, 1e-9]),
    )
)
def test_v_is_flushed_to_zero_exactly_below_half_the_least_code(v):
    errors = Q.state_errors(v, v)
    err = errors["v", "int8"]
    least = quantization.dynamic_code(False)[1]
    assert err.flushed == int(np.sum(err.position < least * np.float32(0.5)))
    assert err.zeros == int(np.sum(v == 0))
    assert errors["v", "bfloat16"].flushed == 0  # (normal float32 values: bfloat16's range)
    if err.relative.size:
        assert errors["v", "bfloat16"].largest <= 2.0**-8
        assert np.all(err.position <= 1)


def test_block_extremes_see_the_missing_minus_one():
    m = np.zeros(512, np.float32)
    m[3], m[7] = 0.5, -0.25  # block 0: largest positive, kept exactly
    m[300], m[301] = -2.0, 1.0  # block 1: largest negative, stored as code[0] * 2
    e = Q.block_extremes(m)
    assert e == {"blocks": 2, "exact": 1, "negative": 1, "negative_as_code_0": True}
    stored = Q.stored(m, "int8", True)
    assert stored[3] == 0.5 and stored[300] == quantization.dynamic_code(True)[0] * 2.0
    assert Q.block_max_exact(np.abs(m), False)
    four = Q.stored(m, "int4", True)  # blocks of 128: the largest negative -> code4[0] * 2
    assert four[3] == 0.5 and four[300] == quantization.code4(True)[0] * 2.0
    assert four[301] == quantization.code4(True)[-4] * 2.0  # 1.0 / 2 = 0.5 -> 0.4375


def test_entry_points_refuse_nonsense_by_name():
    with pytest.raises(ValueError, match="model"):
        Q.train("rnn", "int8", epochs=1)
    with pytest.raises(ValueError, match="state_dtype"):
        Q.train("mlp", "float16", epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        Q.train("mlp", "int8", epochs=0)
    with pytest.raises(ValueError, match="seed"):
        Q.train("mlp", "int8", epochs=1, seed=-1)
    with pytest.raises(ValueError, match="epochs"):
        Q.quality(epochs=0)
    with pytest.raises(ValueError, match="engine"):
        Q.train("mlp", "int8", epochs=1, engine="gpu")
    with pytest.raises(ValueError, match="state_dtype"):
        Q.stored(np.ones(3, np.float32), "int2", True)
    with pytest.raises(SystemExit):
        Q.main([])


def test_the_saved_table_is_of_this_experiment():
    """docs/quantized_state.json (the README's table, ``--save``) has this experiment's
    columns, epochs and rows; rerun ``--save`` when the experiment changes."""
    from pathlib import Path

    saved = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "quantized_state.json").read_text()
    )
    assert saved["columns"] == list(Q.COLUMNS) and saved["epochs"] == Q.EPOCHS
    assert [row[1] for row in saved["rows"]] == list(Q.STATE_DTYPES) * 2
    assert [row[7] for row in saved["rows"]] == ["none"] + ["W1 64x128"] * 3 + ["none"] + [
        "W 432x10"
    ] * 3
