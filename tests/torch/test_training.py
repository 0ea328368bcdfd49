"""Real training with optimlab.torch gives torch.optim's loss curve, and learns.

The digits MLP and the small digits CNN are built from the same seed and trained twice, once
with an optimlab.torch optimizer and once with its torch.optim namesake, on the same shuffled
mini-batches (:func:`optimlab.torch.examples.train`), some with a torch.optim.lr_scheduler (the
OneCycleLR case also cycles Adam's beta_1 and SGD's momentum, group values that optimlab must
read at every step). Compared: the loss of every step, the final parameters and, in float64,
the optimizer state; and the test accuracy must show that the model learned.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import optimlab.torch as ot  # noqa: E402
from optimlab.torch import examples  # noqa: E402

from .._records import RESULTS  # noqa: E402
from ._compare import assert_same_state  # noqa: E402

# Tolerances, from measurements (torch 2.13, CPU):
#
# float64: the per-step losses of the two libraries were measured to differ by at most 8.9e-16
# and the final parameters by 4.0e-15 (every case below, MLP and CNN): the same arithmetic,
# rounded differently at most in the last bits. 1e-9 leaves room for another CPU's kernels and
# still proves the updates equal: a wrong term or a skipped step moves the loss by 1e-4 or more.
#
# float32: a step rounds differently in the last bit (about 1e-7), and fed with identical
# gradients the two libraries' parameters stay within 2e-7 over these runs. Fed back through
# the model, though, such differences can grow: when a pre-activation within rounding of zero
# changes sign (ReLU, max-pool), a gradient jumps and the two runs part. Measured over the cases
# below, with the shuffle seed used here: losses at most 3.6e-7 apart (MLP) and 4.3e-6 (CNN);
# with five other shuffle seeds up to 3e-5 for both; and at learning rates three times higher
# (CNN: SGD 0.1, Adam 1e-2, RMSprop 3e-3) up to 1e-3, where one parameter of the Adam CNN ended
# 5e-3 apart. So float32 compares the loss curve (robust to a few parameters parting), within
# 1e-4 (MLP) and 1e-3 (CNN, whose max-pool ties and 16x more activations cross more often),
# and float64 proves exactness, parameters and optimizer state included.
TOL_64 = 1e-9
TOL_32 = {"DigitsMLP": 1e-4, "DigitsCNN": 1e-3}

EPOCHS_MLP = 3  # 66 steps of 64 images (the last of each epoch has 4)
EPOCHS_CNN_32 = 3
EPOCHS_CNN_64 = 1  # 22 steps: float64 convolutions are slow on CPU


def _one_cycle(optimizer, steps):
    # OneCycleLR also cycles Adam's beta_1 and SGD's momentum between 0.85 and 0.95
    max_lr = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=steps)


def _cosine(optimizer, steps):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)


# (optimizer, keyword arguments, scheduler or None, test accuracy it must exceed): each
# threshold is 0.03 to 0.05 under the accuracy measured after 3 epochs (in the comment; float32
# and float64 agree to three decimals, and the two libraries exactly), and far above chance (0.1)
MLP_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), None, 0.9),  # 0.940
    ("Adam", dict(lr=1e-2), None, 0.9),  # 0.944
    ("AdamW", dict(lr=1e-2, weight_decay=0.05), None, 0.9),  # 0.942
    ("RMSprop", dict(lr=3e-3), None, 0.87),  # 0.915
    ("RMSprop", dict(lr=3e-3, momentum=0.5, centered=True), None, 0.9),  # 0.944
    ("Adam", dict(lr=5e-3), _one_cycle, 0.87),  # 0.911
    ("SGD", dict(lr=0.2, momentum=0.9, nesterov=True), _one_cycle, 0.86),  # 0.904
    ("SGD", dict(lr=0.15, momentum=0.9, nesterov=True, weight_decay=1e-4), _cosine, 0.85),  # 0.895
    ("NAdam", dict(lr=1e-2), None, 0.9),  # 0.951
    ("Adagrad", dict(lr=0.05), None, 0.87),  # 0.913
    ("Adamax", dict(lr=1e-2), None, 0.86),  # 0.909
    ("Adadelta", dict(lr=1.0), None, 0.82),  # 0.864
    ("RAdam", dict(lr=4e-2), None, 0.85),  # 0.889 (momentum SGD for 5 steps, then rectified)
]
CNN_CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), None, 0.92),  # 0.960
    ("Adam", dict(lr=3e-3), None, 0.88),  # 0.924
    ("AdamW", dict(lr=3e-3, weight_decay=0.05), None, 0.88),  # 0.922
    ("RMSprop", dict(lr=1e-3), None, 0.89),  # 0.935
]


def _case_id(case):
    name, kwargs, scheduler, _ = case
    options = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}({options})" + (f"+{scheduler.__name__[1:]}" if scheduler else "")


# these models are far too small to gain from more than one intra-op thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return {dtype: examples.digits(0, dtype=dtype) for dtype in (torch.float32, torch.float64)}


def _run(library, model_class, case, data, dtype, epochs):
    """Train a fresh ``model_class`` (seed 0) with ``library``'s optimizer: (model, optimizer,
    per-step losses)."""
    name, kwargs, scheduler, _ = case
    torch.manual_seed(0)
    model = model_class().to(dtype)
    optimizer = getattr(library, name)(model.parameters(), **kwargs)
    split = data[dtype]
    steps = epochs * -(-len(split.y_train) // 64)
    sched = scheduler(optimizer, steps) if scheduler else None
    losses = examples.train(
        model,
        optimizer,
        split.x_train,
        split.y_train,
        epochs=epochs,
        batch_size=64,
        seed=1,
        scheduler=sched,
    )
    return model, optimizer, losses


def _compare(model_class, case, data, dtype, epochs):
    """Both libraries' runs: asserts equal loss curves (and in float64 equal parameters);
    returns (our model, our optimizer, our losses, their model, their optimizer)."""
    tol = TOL_64 if dtype == torch.float64 else TOL_32[model_class.__name__]
    ours, our_opt, our_losses = _run(ot, model_class, case, data, dtype, epochs)
    theirs, their_opt, their_losses = _run(torch.optim, model_class, case, data, dtype, epochs)
    assert len(our_losses) == len(their_losses) == epochs * 22
    loss_diff = max(abs(a - b) for a, b in zip(our_losses, their_losses, strict=True))
    assert loss_diff <= tol, f"per-step losses differ by up to {loss_diff:.3g}"
    _record(model_class, case, dtype, "per-step loss", loss_diff)
    if dtype == torch.float64:
        worst = 0.0
        for (key, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            diff = float((p.detach() - q.detach()).abs().max())
            assert diff <= tol, f"{key} differs by {diff:.3g}"
            worst = max(worst, diff)
        _record(model_class, case, dtype, "parameters", worst)
    return ours, our_opt, our_losses, theirs, their_opt


def _record(model_class, case, dtype, what: str, deviation: float) -> None:
    """The largest absolute difference of a training comparison, for the summary that the
    test run prints."""
    RESULTS.append(
        {
            "peer": f"training {model_class.__name__}, {what}",
            "optimizer": _case_id(case),
            "options": "",
            "dtype": str(dtype).removeprefix("torch."),
            "deviation": deviation,
        }
    )


def _assert_learned(losses, epochs):
    """The last epoch's mean loss is far below the first step's, ln 10 = 2.30 (measured: 0.06
    to 0.24 of it)."""
    last_epoch = losses[-len(losses) // epochs :]
    assert sum(last_epoch) / len(last_epoch) < 0.35 * losses[0], losses


def _assert_accuracy(ours, theirs, split, threshold):
    acc_ours = examples.accuracy(ours, split.x_test, split.y_test)
    acc_theirs = examples.accuracy(theirs, split.x_test, split.y_test)
    assert acc_ours > threshold, acc_ours
    # the same predictions, up to a test image whose two best logits are within rounding
    assert abs(acc_ours - acc_theirs) <= 1.5 / len(split.y_test)


@pytest.mark.parametrize("case", MLP_CASES, ids=_case_id)
def test_mlp_float32_trains_like_torch(case, data):
    ours, _, losses, theirs, _ = _compare(examples.DigitsMLP, case, data, torch.float32, EPOCHS_MLP)
    _assert_learned(losses, EPOCHS_MLP)
    _assert_accuracy(ours, theirs, data[torch.float32], case[3])


@pytest.mark.parametrize("case", MLP_CASES, ids=_case_id)
def test_mlp_float64_trains_exactly_like_torch(case, data):
    ours, our_opt, losses, theirs, their_opt = _compare(
        examples.DigitsMLP, case, data, torch.float64, EPOCHS_MLP
    )
    assert_same_state(our_opt.state_dict(), their_opt.state_dict(), TOL_64)
    _assert_learned(losses, EPOCHS_MLP)
    _assert_accuracy(ours, theirs, data[torch.float64], case[3])


@pytest.mark.parametrize("case", CNN_CASES, ids=_case_id)
def test_cnn_float32_trains_like_torch(case, data):
    ours, _, losses, theirs, _ = _compare(
        examples.DigitsCNN, case, data, torch.float32, EPOCHS_CNN_32
    )
    _assert_learned(losses, EPOCHS_CNN_32)
    _assert_accuracy(ours, theirs, data[torch.float32], case[3])


@pytest.mark.parametrize("case", CNN_CASES, ids=_case_id)
def test_cnn_float64_trains_exactly_like_torch(case, data):
    # one epoch: too short to learn much, long enough to prove the same steps
    _, our_opt, losses, _, their_opt = _compare(
        examples.DigitsCNN, case, data, torch.float64, EPOCHS_CNN_64
    )
    assert_same_state(our_opt.state_dict(), their_opt.state_dict(), TOL_64)
    # the loss falls (the second half's mean was measured 0.42 to 0.89 of the first loss)
    assert sum(losses[11:]) / len(losses[11:]) < 0.95 * losses[0], losses
