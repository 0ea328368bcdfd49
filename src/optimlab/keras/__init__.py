"""optimlab's optimizers as ``keras.optimizers.Optimizer`` subclasses: a preset in ``model.fit``.

::

    import keras, optimlab.keras as olk
    model.compile(optimizer=olk.Adam(learning_rate=1e-3, preset="torch"), loss="mse")
    model.fit(x, y)              # torch.optim.Adam's numbers, inside Keras's jitted train step

One class per optimizer of :data:`optimlab.optimizers.OPTIMIZERS` (:data:`CLASSES`: ``SGD,
Adagrad, RMSprop, Adam, AdamW, Nadam, Adamax, Adadelta, Lion, RAdam, Rprop, ASGD, Muon, Lamb,
Adafactor, Ftrl, ScheduleFreeAdamW``, the optimizers :mod:`optimlab.optax` has;
:mod:`optimlab.engines.traced` lists them). Each takes Keras's
arguments in Keras's order (``learning_rate``, the class's own, ``weight_decay``,
``clipnorm``, ..., ``name``), every hyperparameter of the NumPy dialect with its checks and
messages, and the keyword-only ``preset``:

``preset="keras"`` (the default)
    Keras's defaults and formulas (``keras.optimizers.Adam``'s numbers); ``"torch"`` or
    ``"optax"`` switches to that framework's defaults and formulas, as
    ``optimlab.Adam(preset=...)`` does (torch's epsilon outside the root of the corrected v,
    its L2 ``weight_decay``, its clipping formula; optax's has no default learning rate).

The update is the rule's own ``scalars`` and ``update`` (:mod:`optimlab.rules`) in the
dialect's pipeline (:mod:`optimlab.keras._base`): on Keras's JAX backend on ``jax.numpy``
arrays with a traced step count and learning rate, so it is compiled with the rest of the
train step (``jit_compile=True``, Keras's default there); on the torch backend, with the
step numbers computed on the host, by the fused CPU kernel in place on the variables' and
slots' tensors where they are CPU float32/float64 (the dialect's ``engine="fused"`` numbers to
the bit), else by the rule's ``update`` in torch operations (:mod:`optimlab.keras._torch_fused`
says which and why no ``engine=`` argument); the tensor-level rules (Lamb, Muon, Adafactor:
norms, matrix products and means of whole parameters) by the NumPy dialect's own ``update``
on host copies of the tensors. TensorFlow is refused (not installed here). Keras keeps what
is Keras's: the loss scale (``loss_scale_factor``), gradient accumulation, the EMA
(``use_ema``), ``iterations``, the learning rate variable or ``keras.optimizers.schedules``
schedule, and
``exclude_from_weight_decay`` (by variable or by name). ``nan_policy`` is ``"propagate"``
only (a compiled step neither raises nor skips).

The classes are registered (``keras.saving.register_keras_serializable(package="optimlab")``):
``get_config``/``from_config`` round-trip every hyperparameter and ``preset``, and
``model.save("m.keras")`` / ``keras.models.load_model`` the optimizer's variables (the slots
in Keras's order, then the rule's scalar step state: Nadam's momentum product, ASGD's eta
and mu, Schedule-Free's lr_max and weight sum) once ``optimlab.keras`` is imported.
Schedule-Free's z starts as a copy of each variable, as Keras's does; Keras's own
ScheduleFreeAdamW keeps no lr_max or weight sum (its c_t is 1 / t), so its saved state
has two scalars fewer.

Hyperparameters read as attributes (``opt.beta_1``) and may be set (with the dialect's
checks) before the first update; one that decides which variables exist (SGD's momentum
switched on or off, ``use_ema``) is refused once the optimizer is built. A train function
Keras has already compiled keeps the values it was traced with, as with Keras's own
optimizers; the learning rate is a variable and may change at any time.

Muon and Adafactor (tensor-level rules): a variable of two dimensions is a matrix and takes
Muon's Newton-Schulz step, the others its fallback (Keras's AdamW with
``adam_weight_decay``; ``preset="torch"`` refuses them at the build, as torch.optim.Muon);
Keras's own Muon also takes AdamW for variables named by ``exclude_layers`` or like an
embedding, which optimlab.keras.Muon does not take (by shape alone, as optimlab.Muon: an
Embedding's table is a matrix here). Adafactor's slots are a row and a column of each factored
variable and a full ``v`` of the others, no more: Keras's own Adafactor also keeps a full-size
V of each factored variable (never read back), so its saved state has those variables more;
and its ``relative_step=False`` is the paper's absolute step (Keras 3.15 ignores it).

:data:`NOT_YET` names the optimizers without a class and why (none now).
"""

from __future__ import annotations

try:
    import keras
except ImportError as error:  # (Keras's default backend is TensorFlow: its import fails)
    hint = (
        "set KERAS_BACKEND=jax or KERAS_BACKEND=torch before importing keras (Keras's default, "
        "TensorFlow, is not installed)"
        if getattr(error, "name", None) == "tensorflow"
        else "pip install 'optimlab[keras]'"
    )
    raise ImportError(f"optimlab.keras needs Keras 3 on JAX or torch: {hint} ({error})") from error
if int(keras.__version__.split(".")[0]) < 3:
    raise ImportError(
        f"optimlab.keras needs Keras 3, found keras {keras.__version__}: pip install 'keras>=3.5'"
    )

from ..engines.traced import NOT_YET, TENSOR_OPTIMIZERS, traced_optimizers  # noqa: E402
from ._backends import BACKENDS  # noqa: E402
from ._base import BACKEND_NOT_YET, KERAS_ARGUMENTS, NAN_POLICIES, Optimizer, make_class  # noqa: E402

#: class name -> the optimlab.keras class: every elementwise optimizer of OPTIMIZERS and those
#: of TENSOR_OPTIMIZERS, but NOT_YET (:mod:`optimlab.engines.traced`, as optimlab.optax): all
CLASSES = {name: make_class(cls) for name, cls in traced_optimizers().items()}
globals().update(CLASSES)


def __getattr__(name: str):
    if name in NOT_YET:
        raise AttributeError(
            f"optimlab.keras.{name} does not exist yet: {NOT_YET[name]}; optimlab.{name} runs "
            "on NumPy arrays"
        )
    raise AttributeError(f"module 'optimlab.keras' has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "BACKEND_NOT_YET",
    "CLASSES",
    "KERAS_ARGUMENTS",
    "NAN_POLICIES",
    "NOT_YET",
    "Optimizer",
    "TENSOR_OPTIMIZERS",
    *CLASSES,
]
