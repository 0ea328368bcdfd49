"""What Keras 3's optimizer tests make of optimlab.keras (:mod:`tests.keras_suite.face`).

``NOT_APPLICABLE``
    not run, each with its reason.
``DIFFERENCES``
    run, and expected to fail in the way given (a regex on ``"<ExceptionType>: <message>"``),
    each with its reason and measured size. A test here that starts to pass fails.
everything else
    run, and must pass.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_OPTIMIZER = "builds no optimizer: it tests Keras's own schedule or wrapper alone"

TENSORBOARD = "keras.callbacks.TensorBoard writes with TensorFlow's summary API: not installed"

#: Keras's Muon tests of its internal methods: optimlab.keras.Muon has none of them (its
#: Newton-Schulz, shape factor and decay are the rule's and the pipeline's, compared with
#: Keras's own end to end in tests/keras_face/test_parity.py; the dialect's suite answers
#: these methods with optimlab's rule, tests/keras_suite/adapters.py's MuonInternals)
_MUON_INTERNALS = {
    "test_Newton_Schulz": "Keras's zeropower_via_newtonschulz5",
    "test_lr_adjust_none": "Keras's lr_adjust",
    "test_lr_adjust_2d": "Keras's lr_adjust",
    "test_should_use_adamw": "Keras's _should_use_adamw on variable paths (optimlab: by shape)",
    "test_muon_weight_decay": "Keras's _apply_weight_decay (optimlab.keras decays in its step)",
    "test_adamw_weight_decay": "Keras's _apply_weight_decay (optimlab.keras decays in its step)",
    "test_adamw_single_step": "update_step called outside apply (the step's numbers are apply's)",
    "test_muon_single_step": "update_step called outside apply (the step's numbers are apply's)",
}

NOT_APPLICABLE: dict[str, str] = {
    "multi_optimizer_test::MultiOptimizerTest::test_tensorboard_logging_with_multi_optimizer": (
        TENSORBOARD
    ),
    **{
        f"muon_test::MuonTest::{name}": f"an internal method of keras.optimizers.Muon: {what}"
        for name, what in _MUON_INTERNALS.items()
    },
}


@dataclass(frozen=True)
class Difference:
    """A Keras test that fails against optimlab.keras: ``failure`` is a regex the failure
    must match, ``label`` a short name of the difference, ``why`` the reason (and its
    measured size)."""

    failure: str
    label: str
    why: str


#: the right exception (a ValueError naming the argument), in optimlab's words: the argument,
#: the value and the valid range (the house rule), where Keras's test matches Keras's text
WORDING = r'^AssertionError: ".*" does not match ".*"'
_WORDS = ("error wording", "the same ValueError, in optimlab's words (argument, value, range)")

DIFFERENCES: dict[str, Difference] = {
    "sgd_test::SGDTest::test_invalid_momentum": Difference(WORDING, *_WORDS),
    "adamw_test::AdamWTest::test_weight_decay_is_none": Difference(WORDING, *_WORDS),
    "lion_test::LionTest::test_invalid_beta_1": Difference(WORDING, *_WORDS),
    "optimizer_test::OptimizerTest::test_clip_args": Difference(WORDING, *_WORDS),
    **{
        f"ftrl_test::FtrlTest::test_invalid_{name}": Difference(WORDING, *_WORDS)
        for name in (
            "initial_accumulator_value",
            "learning_rate_power",
            "l1_regularization_strength",
            "l2_regularization_strength",
            "l2_shrinkage_regularization_strength",
        )
    },
    "adafactor_test::AdafactorTest::test_correctness_with_golden": Difference(
        r"^AssertionError: \s*Not equal to tolerance",
        "relative_step",
        "Keras 3.15 ignores relative_step=False (it takes min(lr, 1/sqrt(t)) always), and the "
        "golden values are those of the relative step; optimlab.keras.Adafactor with "
        "relative_step=False takes the paper's absolute step rho = lr (optimlab.Adafactor's "
        "docstring). From t = 5 (lr 0.5 > 1/sqrt(5)) it moves further: 0.0511 against 0.0554 "
        "(4.4e-3 absolute; with relative_step=True the same run is within 5.0e-5 of the golden "
        "values)",
    ),
    "muon_test::MuonTest::test_model_fit": Difference(
        r"^TypeError: Muon\(\) got unexpected keyword argument\(s\) 'exclude_layers'",
        "AdamW by name",
        "Keras's Muon also takes the AdamW step for variables whose path matches exclude_layers "
        "(or an embedding's, exclude_embeddings); optimlab.keras.Muon chooses by shape alone, "
        "as optimlab.Muon (its docstring), and refuses the argument by name",
    ),
    "nadam_test::NadamTest::test_build_with_empty_var_list": Difference(
        r"^AttributeError: Nadam has no attribute '_u_product'",
        "a Keras internal attribute",
        "the test reads Keras's internal Nadam._u_product; optimlab.keras keeps the momentum "
        "product as its step variable 'mu_product' (the float of JAX's mode: float32 in "
        "Keras's configuration, float64 under x64), saved after the slots. Its value: after "
        "300 float32 updates (lr 0.01) 1.6885406e-20, Keras's 1.6885416e-20 (5.7e-7 "
        "relative, a few float32 ulps)",
    ),
}
