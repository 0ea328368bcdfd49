"""fit(): the lecture's update counts, determinism, convergence, traces and argument errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

import optimlab as ol
from optimlab.lab import problems
from optimlab.lab.training import History, fit, updates_per_epoch


@pytest.fixture(scope="module")
def linear():
    return problems.get("linear")


@pytest.mark.parametrize(
    ("batch_size", "drop_last", "updates", "evaluations"),
    [
        (100, False, 50, 5000),  # the lecture: 5 batches x 10 epochs
        (1, False, 5000, 5000),  # stochastic GD: 10 x 500
        (None, False, 10, 5000),  # batch GD: one update per epoch
        (300, False, 20, 5000),  # 500 = 300 + 200: two updates per epoch
        (300, True, 10, 3000),  # the short batch of 200 dropped
        (500, True, 10, 5000),
    ],
)
def test_the_lecture_counts(linear, batch_size, drop_last, updates, evaluations):
    history = fit(
        linear,
        ol.SGD(learning_rate=0.01, name="SGD"),  # the lecture's call
        epochs=10,
        batch_size=batch_size,
        drop_last=drop_last,
    )
    assert isinstance(history, History)
    assert history.updates == updates == history.loss_per_update.size
    assert history.gradient_evaluations == evaluations == history.evaluations_per_update[-1]
    assert history.epochs == 10 and history.loss_per_epoch.shape == (11,)
    assert history.batch_size == (500 if batch_size is None else batch_size)
    assert np.all(np.diff(history.evaluations_per_update) > 0)
    assert history.wall_time > 0 and history.problem == "linear" and history.optimizer == "SGD"
    assert updates_per_epoch(500, batch_size, drop_last) == updates // 10


def test_determinism(linear):
    def run(seed):
        return fit(linear, ol.Adam(learning_rate=0.05), epochs=3, batch_size=32, seed=seed)

    a, b, c = run(4), run(4), run(5)
    np.testing.assert_array_equal(a.loss_per_update, b.loss_per_update)
    np.testing.assert_array_equal(a.loss_per_epoch, b.loss_per_epoch)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    assert not np.array_equal(a.loss_per_update, c.loss_per_update)  # another shuffle


def test_shuffle_off_takes_rows_in_order(linear):
    history = fit(linear, "SGD", epochs=2, batch_size=50, shuffle=False)
    start = linear.init_params(0)
    assert history.loss_per_update[0] == linear.loss(start, np.arange(50))
    shuffled = fit(linear, "SGD", epochs=1, batch_size=50, seed=0)
    order = np.random.default_rng(0).permutation(500)
    assert shuffled.loss_per_update[0] == linear.loss(start, order[:50])


def test_batch_gd_is_the_lecture_update_and_converges_to_least_squares(linear):
    lr = 0.4
    one = fit(linear, ol.SGD(learning_rate=lr), epochs=1)
    x, y = linear.X[:, 0], linear.y
    w = 0.0 - lr * np.mean(-2 * (y - 0.0) * x)  # w_n = w_0 - eta dL/dw from (w, b) = (0, 0)
    b = 0.0 - lr * np.mean(-2 * (y - 0.0))
    assert float(one.params["w"]) == pytest.approx(w, rel=1e-14)
    assert float(one.params["b"]) == pytest.approx(b, rel=1e-14)

    history = fit(linear, ol.SGD(learning_rate=lr), epochs=300)
    for key in ("w", "b"):
        np.testing.assert_allclose(history.params[key], linear.solution[key], rtol=1e-9)
    assert history.final_loss == pytest.approx(linear.optimum, rel=1e-12)
    # batch GD: the loss before each update is the full loss of the previous epoch
    np.testing.assert_array_equal(history.loss_per_update, history.loss_per_epoch[:-1])
    assert np.all(np.diff(history.loss_per_epoch) <= 1e-15)


def test_stochastic_gd_ends_in_a_noise_ball(linear):
    """Constant-rate SGD gets near the optimum but keeps jittering around it."""
    history = fit(linear, ol.SGD(learning_rate=0.05), epochs=2, batch_size=1)
    assert history.final_loss < 1.5 * linear.optimum
    assert history.final_loss > linear.optimum


@pytest.mark.parametrize(
    ("name", "lr", "batch_size", "epochs", "factor"),
    [("breast_cancer", 1e-2, 32, 3, 0.25), ("digits_mlp", 1e-2, 64, 3, 0.3)],
)
def test_adam_decreases_the_loss(name, lr, batch_size, epochs, factor):
    problem = problems.get(name)
    history = fit(problem, ol.Adam(learning_rate=lr), epochs=epochs, batch_size=batch_size)
    curve = history.loss_per_epoch
    assert curve[-1] < factor * curve[0]
    assert np.all(np.diff(curve) < 0)
    assert problem.metrics(history.params)["accuracy"] > 0.9


def test_trace_shapes_and_plain_sgd_effective_step():
    problem = problems.get("digits_softmax")
    lr = 0.5
    history = fit(problem, ol.SGD(learning_rate=lr), epochs=2, batch_size=600, trace=True)
    trace = history.trace
    t = history.updates
    assert t == 6
    assert trace.learning_rate.shape == trace.gradient_norm.shape == trace.update_norm.shape == (t,)
    np.testing.assert_array_equal(trace.learning_rate, lr)
    assert trace.effective_step["W"].shape == (t, 64, 10)
    assert trace.effective_step["b"].shape == (t, 10)
    assert trace.params["W"].shape == (t + 1, 64, 10)
    eff = trace.effective_step["W"]
    finite = np.isfinite(eff)
    # plain SGD: |delta p| / |g| = lr wherever g != 0
    np.testing.assert_allclose(eff[finite], lr, rtol=1e-9)
    np.testing.assert_allclose(trace.effective_step["b"], lr, rtol=1e-9)
    # pixels that are 0 in every image get g = 0: NaN, not a made-up rate
    blank = np.flatnonzero(problem.X.max(axis=0) == 0)
    assert blank.size and np.all(np.isnan(eff[:, blank, :]))
    # plain SGD: update norm = lr * gradient norm; the path ends at the final parameters
    np.testing.assert_allclose(trace.update_norm, lr * trace.gradient_norm, rtol=1e-9)
    start = problem.init_params(0)
    np.testing.assert_array_equal(trace.params["W"][0], start["W"])
    np.testing.assert_array_equal(trace.params["W"][-1], history.params["W"])
    steps = np.sqrt(
        sum(
            np.sum(np.diff(trace.params[k], axis=0) ** 2, axis=(1, 2)[: v.ndim])
            for k, v in start.items()
        )
    )
    np.testing.assert_allclose(trace.update_norm, steps, rtol=1e-9)
    assert fit(problem, "SGD", epochs=1, batch_size=900).trace is None


def test_trace_follows_a_schedule(linear):
    history = fit(
        linear,
        ol.SGD(learning_rate=lambda step: 0.1 / (1 + step)),
        epochs=2,
        batch_size=250,
        trace=True,
    )
    np.testing.assert_allclose(history.trace.learning_rate, 0.1 / (1 + np.arange(4)))
    np.testing.assert_allclose(history.trace.effective_step["w"], 0.1 / (1 + np.arange(4)))


def test_sparse_feature_under_batch_gd():
    """The lecture's sparse column: batch GD gives the sparse weight a tiny gradient, so with
    one learning rate it lags; Adagrad's per-parameter rate grows for it instead."""
    problem = problems.get("sparse")
    lr = 0.2
    sgd = fit(problem, ol.SGD(learning_rate=lr), epochs=30, trace=True)
    # at the start both weights are 2 away from their targets, yet the sparse one gets a
    # gradient over 10x smaller (averaged over all rows, 95% of which have x_sparse = 0)
    path = sgd.trace.params
    for t in range(3):
        dense, rare = problem.feature_gradient_magnitudes({"w": path["w"][t], "b": path["b"][t]})
        assert rare < dense / 5
    target = problem.solution["w"]
    error = np.abs(sgd.params["w"] - target) / np.abs(target)
    assert error[0] < 0.01 and error[1] > 0.3  # the dense weight is there, the sparse one is not

    adagrad = fit(problem, ol.Adagrad(learning_rate=1.0), epochs=30, trace=True)
    error = np.abs(adagrad.params["w"] - target) / np.abs(target)
    assert np.all(error < 0.01)  # both weights there after the same 30 updates
    eff = adagrad.trace.effective_step["w"]
    # Adagrad's rate lr / sqrt(G) only shrinks (up to the rounding of |delta p| / |g| once the
    # steps are tiny)
    assert np.all(eff[1:] <= eff[:-1] * (1 + 1e-8))
    assert np.all(eff[-1] < 0.95 * eff[0])
    assert eff[-1, 1] > 3 * eff[-1, 0]  # and stays larger for the rare feature
    np.testing.assert_allclose(sgd.trace.effective_step["w"], lr, rtol=1e-9)


def test_params_argument_and_string_optimizer(linear):
    start = {"w": np.array(1.0), "b": np.array(-1.0)}
    history = fit(linear, "Adam", epochs=1, batch_size=100, params=start)
    assert re.fullmatch(r"adam(_\d+)?", history.optimizer)  # Keras's default names
    assert history.loss_per_epoch[0] == linear.loss(start)
    assert float(start["w"]) == 1.0  # copied, not trained in place
    assert history.loss_per_epoch[-1] == pytest.approx(linear.loss(history.params))


def test_errors_name_the_argument(linear):
    sgd = ol.SGD
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1, got 0"):
        fit(linear, sgd(), epochs=0)
    with pytest.raises(TypeError, match=r"epochs must be an integer >= 1, got True"):
        fit(linear, sgd(), epochs=True)
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, 500\], got 501"):
        fit(linear, sgd(), batch_size=501)
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, 500\], got 0"):
        fit(linear, sgd(), batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        fit(linear, sgd(), batch_size="32")
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        fit(linear, sgd(), seed=-1)
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        fit(linear, sgd(), shuffle=1)
    with pytest.raises(TypeError, match="drop_last must be True or False"):
        fit(linear, sgd(), drop_last="yes")
    with pytest.raises(TypeError, match="optimizer must be an optimlab Optimizer.*got float"):
        fit(linear, 0.1)
    with pytest.raises(ValueError, match="unknown optimizer 'Adamm'"):
        fit(linear, "Adamm")
    with pytest.raises(TypeError, match="problem must be an optimlab.lab.problems.Problem"):
        fit("linear", sgd())
    with pytest.raises(ValueError, match=r"must have the keys \['b', 'w'\]"):
        fit(linear, sgd(), params={"w": np.zeros(())})
    used = sgd()
    fit(linear, used, epochs=1)
    assert re.fullmatch(r"sgd(_\d+)?", used.name)  # Keras's default names: sgd, sgd_1, ...
    with pytest.raises(ValueError, match=f"optimizer must be fresh: {used.name} has already taken"):
        fit(linear, used, epochs=1)
    with pytest.raises(ValueError, match="batch_size must be an integer in"):
        updates_per_epoch(10, 11)


def test_eval_every_records_the_full_data_loss_and_the_update_time():
    problem = problems.get("digits_softmax")
    h = fit(problem, ol.Adam(learning_rate=0.01), epochs=2, batch_size=64, eval_every=5)
    per_epoch = updates_per_epoch(problem.n_samples, 64)
    assert list(h.eval_updates) == list(range(0, h.updates + 1, 5))
    assert h.eval_loss[0] == h.loss_per_epoch[0]
    # an evaluation that falls on an epoch's end is that epoch's full-data loss
    for epoch in (1, 2):
        if epoch * per_epoch % 5 == 0:
            k = list(h.eval_updates).index(epoch * per_epoch)
            assert h.eval_loss[k] == h.loss_per_epoch[epoch]
    assert h.train_seconds[0] == 0.0 and np.all(np.diff(h.train_seconds) >= 0)
    assert h.train_seconds[-1] <= h.wall_time
    plain = fit(problem, ol.Adam(learning_rate=0.01), epochs=2, batch_size=64)
    assert plain.eval_updates.size == 0 and plain.eval_loss.size == 0
    np.testing.assert_array_equal(plain.loss_per_epoch, h.loss_per_epoch)  # nothing else moves


def test_eval_every_is_checked():
    with pytest.raises(ValueError, match="eval_every"):
        fit(problems.get("linear"), ol.SGD(), epochs=1, eval_every=0)


@pytest.mark.parametrize("name", ["Muon", "Adafactor", "Lamb"])
def test_a_rule_on_whole_tensors_trains_each_parameter_as_its_own_array(name):
    """fit() hands a tensor-level rule each parameter's matrix (Params.step would hand it the
    flat buffer): the same numbers as apply_gradients on separate arrays."""
    problem = problems.get("digits_mlp", hidden=8)
    h = fit(problem, ol.get(name, learning_rate=0.01), epochs=1, batch_size=200, shuffle=False)
    params = problem.init_params(0)
    opt = ol.get(name, learning_rate=0.01)
    for start in range(0, problem.n_samples, 200):
        _, grads = problem.loss_and_grad(
            params, np.arange(start, min(start + 200, problem.n_samples))
        )
        opt.apply_gradients([(grads[k], params[k]) for k in problem.shapes])
    for key in problem.shapes:
        np.testing.assert_array_equal(h.params[key], params[key])


def test_schedule_free_is_evaluated_at_its_average_x():
    """fit() evaluates Schedule-Free AdamW where the model is evaluated (x), not where it takes
    gradients (y): the same numbers as a hand-written loop that reads eval_params."""
    problem = problems.get("digits_softmax")
    h = fit(problem, ol.ScheduleFreeAdamW(learning_rate=0.01), epochs=1, batch_size=300,
            shuffle=False)  # fmt: skip
    params = problem.init_params(0)
    arrays = [params[k] for k in problem.shapes]
    opt = ol.ScheduleFreeAdamW(learning_rate=0.01)
    for start in range(0, problem.n_samples, 300):
        rows = np.arange(start, min(start + 300, problem.n_samples))
        _, grads = problem.loss_and_grad(dict(zip(problem.shapes, arrays, strict=True)), rows)
        opt.apply_gradients(zip([grads[k] for k in problem.shapes], arrays, strict=True))
    x = dict(zip(problem.shapes, opt.eval_params(arrays), strict=True))
    y = dict(zip(problem.shapes, arrays, strict=True))
    assert h.loss_per_epoch[-1] == problem.loss(x) != problem.loss(y)
    for key in problem.shapes:
        np.testing.assert_array_equal(h.params[key], x[key])
