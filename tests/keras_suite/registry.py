"""Every Keras 3.15 optimizer and schedule test, and what optimlab makes of it.

Three lists partition the collected tests (``tests/keras_suite/test_keras_suite.py`` fails
when a Keras test is on none of them, or a listed one is gone):

``NOT_APPLICABLE``
    not run, each with its reason: they need what a NumPy library has no counterpart for
    (``model.fit``, TensorFlow, Keras variable attributes) or a Keras internal.
``DIFFERENCES``
    run, and expected to fail, in the way given: a deliberate difference from Keras, each one
    measured by ``optimlab differences`` ("The Keras API on NumPy arrays") and checked against
    Keras in ``test_keras_differences.py``. A test here that starts to pass fails.
everything else
    run, and must pass.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_FIT = "trains a keras.Sequential with model.fit: no Keras models on NumPy arrays"
TENSORFLOW = "TensorFlow only (its Variables, checkpoints or IndexedSlices)"
FUTURE = "{}: not in optimlab yet (a later issue)"
STATELESS = (
    "stateless_apply (Keras's functional API for JAX: variable values in, new values out); "
    "optimlab updates NumPy arrays in place, which the stateful variant of the test checks"
)
OVERWRITE = "Variable.overwrite_with_gradient (float8 training): NumPy arrays carry no such flag"
CALLBACK = "a Keras callback on a compiled keras model: no Keras models on NumPy arrays"
_LSO = "loss_scale_optimizer_test::LossScaleOptimizerTest::"
_MULTI = "multi_optimizer_test::MultiOptimizerTest::"

NOT_APPLICABLE = {
    "adam_test::AdamTest::test_clipnorm_indexed_slices": TENSORFLOW,
    "adam_test::AdamTest::test_ema": MODEL_FIT
    + " (its first half, Keras's EMA rule, is optimizer_test's test_ema, which runs)",
    "lion_test::LionTest::test_ema": MODEL_FIT,
    "schedule_free_adamw_test::ScheduleFreeAdamWTest::test_with_model": MODEL_FIT,
    "nadam_test::NadamTest::test_build_with_empty_var_list": (
        "checks the dtype of Keras's internal _u_product variable; optimlab keeps Nadam's "
        "momentum product as a Python float (build([]) itself: test_api.py::"
        "test_build_with_no_variables)"
    ),
    "optimizer_test::OptimizerTest::test_ema_with_model_fit": MODEL_FIT,
    "optimizer_test::OptimizerTest::test_tf_checkpointing": TENSORFLOW,
    "optimizer_test::OptimizerTest::test_mixed_with_tf_variables": TENSORFLOW,
    "optimizer_test::OptimizerTest::test_constraints_are_applied": (
        "Variable.constraint (keras.constraints): NumPy arrays carry no constraints"
    ),
    "optimizer_test::OptimizerTest::test_overwrite_with_gradient": (
        "Variable.overwrite_with_gradient (float8 training): NumPy arrays carry no such flag"
    ),
    "optimizer_test::OptimizerTest::test_overwrite_with_gradient_with_gradient_accumulation": (
        "Variable.overwrite_with_gradient (float8 training): NumPy arrays carry no such flag"
    ),
    "optimizer_test::OptimizerTest::test_gradient_accumulation": (
        "reads Keras's internal accumulator variables (_accumulated_gradients) and micro-step "
        "counter (_iterations); its public half: test_api.py::"
        "test_gradient_accumulation_as_keras_counts"
    ),
    "schedules.learning_rate_schedule_test::TestFitLRSchedulesFlow::test_fit_lr_correctness": (
        MODEL_FIT
    ),
    "muon_test::MuonTest::test_model_fit": MODEL_FIT,
    "muon_test::MuonTest::test_should_use_adamw": (
        "Keras's internal _should_use_adamw on Keras variables' paths (exclude_layers, "
        "exclude_embeddings, a keras.layers.Embedding's weights): NumPy arrays have no names "
        "or paths, and optimlab.Muon chooses the AdamW step by shape alone (its docstring; "
        "the shape rule runs in test_adamw_single_step and test_muon_single_step)"
    ),
    **{
        f"{_LSO}{name}_stateless": STATELESS
        for name in (
            "test_downscaling",
            "test_finite_step",
            "test_finite_step_with_inner_loss_scale",
            "test_infinite_step",
            "test_iterations_update",
            "test_upscaling",
        )
    },
    f"{_LSO}test_finite_step_with_overwrite_stateful": OVERWRITE,
    f"{_LSO}test_finite_step_with_overwrite_stateless": OVERWRITE,
    f"{_MULTI}test_stateless_apply": STATELESS,
    f"{_MULTI}test_multi_optimizer_with_model_fit": MODEL_FIT,
    f"{_MULTI}test_learning_rate_scheduler_with_multi_optimizer": CALLBACK,
    f"{_MULTI}test_reduce_lr_on_plateau_with_multi_optimizer": CALLBACK,
    f"{_MULTI}test_tensorboard_logging_with_multi_optimizer": CALLBACK,
    f"{_MULTI}test_swap_ema_weights_with_multi_optimizer": CALLBACK,
}


@dataclass(frozen=True)
class Difference:
    """A Keras test that fails on a documented difference: ``failure`` is a regex that the
    failure (``"<ExceptionType>: <message>"``) must match, ``row`` the row of ``optimlab
    differences`` ("The Keras API on NumPy arrays") that measures it."""

    failure: str
    row: str


WORDING = r'^AssertionError: ".*" does not match ".*"'  # the right exception, another text

DIFFERENCES = {
    "sgd_test::SGDTest::test_invalid_momentum": Difference(WORDING, "error messages"),
    "adamw_test::AdamWTest::test_weight_decay_is_none": Difference(WORDING, "error messages"),
    "lion_test::LionTest::test_invalid_beta_1": Difference(WORDING, "error messages"),
    "optimizer_test::OptimizerTest::test_clip_args": Difference(WORDING, "error messages"),
    # Keras's Ftrl checks: the same ValueErrors, in optimlab's words (argument, value, range)
    **{
        f"ftrl_test::FtrlTest::test_invalid_{name}": Difference(WORDING, "error messages")
        for name in (
            "initial_accumulator_value",
            "learning_rate_power",
            "l1_regularization_strength",
            "l2_regularization_strength",
            "l2_shrinkage_regularization_strength",
        )
    },
    # Keras's Ftrl golden-value tests pass float64 NumPy gradients for float32 variables (the
    # same numbers with the gradients cast: tests/test_ftrl.py)
    **{
        f"ftrl_test::FtrlTest::{name}": Difference(
            r"^TypeError: gradient 0 has dtype float64 but its parameter has float32",
            "gradient dtype",
        )
        for name in ("test_single_step", "test_correctness_with_golden")
    },
    # Keras's Adafactor tests pass float64 NumPy gradients for float32 variables
    **{
        f"adafactor_test::AdafactorTest::{name}": Difference(
            r"^TypeError: gradient 0 has dtype float64 but its parameter has float32",
            "gradient dtype",
        )
        for name in (
            "test_single_step_1d",
            "test_single_step_2d",
            "test_correctness_with_golden",
            "test_weight_decay",
        )
    },
    "schedules.learning_rate_schedule_test::PiecewiseConstantDecayTest::test_piecewise_values": (
        Difference(r"^ValueError: step must be an integer >= 0 .*got .*-999", "negative step")
    ),
}
