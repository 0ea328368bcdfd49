"""What the Keras face computes with, per Keras backend: the step numbers, the rule's update
and the clipping, on that backend's tensors.

``jax``
    the rule's own ``scalars`` and ``update`` rebound to ``jax.numpy``
    (:mod:`optimlab.engines.jax_engine`, as :mod:`optimlab.optax` runs them): the step count
    and the learning rate stay traced, so the update is compiled with the rest of Keras's
    jitted train step (no host round trip). Step numbers are computed in JAX's default float
    (float64 under ``jax_enable_x64``, as the dialect's Python floats), then cast to each
    variable's dtype.
``torch``
    Keras's torch backend runs eagerly: the step count and the learning rate are read on the
    host, ``rule.scalars`` gives the NumPy engine's very Python floats, and the update runs on
    the variables' torch tensors: the fused numba kernel on CPU float32/float64 tensors of an
    elementwise rule, in place, else the rule's ``update`` with torch operations
    (:func:`optimlab.torch._ops.torch_update`: ``np.sqrt`` and friends bound to torch's); see
    :mod:`optimlab.keras._torch_fused`. Python floats keep a tensor's dtype in torch as in
    NumPy.
    A tensor-level rule (Muon, Adafactor) runs its NumPy ``update`` on the tensors' memory
    (``run_tensor_update``: matrix products and means over whole axes).

Each backend is a small class of static functions with the same names; :func:`current` picks
the one of ``keras.backend.backend()`` or refuses the others.
"""

from __future__ import annotations

import keras

from .. import clipping

#: Keras backends the face runs on (TensorFlow's would need tf.function-safe step numbers)
BACKENDS = ("jax", "torch")


class _Jax:
    """The JAX backend: traced step numbers and the rule on ``jax.numpy`` arrays."""

    name = "jax"

    def __init__(self) -> None:
        import jax.numpy as jnp

        from ..engines import jax_engine

        self.jnp = jnp
        self.engine = jax_engine

    def step_number(self, iterations):
        """t = iterations + 1, the 1-based number of the update being made (traced), as a
        float of JAX's default dtype, as Keras casts its step (``ops.cast(iterations + 1,
        dtype)``): ``beta ** t`` is then JAX's float power. Of an integer t, eager JAX (an
        ``apply`` outside ``jit``) takes its integer power, repeated products whose float32
        rounding reaches 32 ulps of 0.999^t by t = 300, and 1 - beta_2^t magnifies that
        (Adam's step size was 1e-5 off Keras's at t = 3)."""
        t = self.jnp.asarray(keras.ops.convert_to_tensor(iterations)) + 1
        return t.astype(self.engine.default_float())

    def rate(self, learning_rate):
        """The learning rate in JAX's default float (a float32 Keras variable would otherwise
        make every step number float32)."""
        value = keras.ops.convert_to_tensor(learning_rate)
        return self.jnp.asarray(value, self.engine.default_float())

    def state(self, variable):
        return variable.value

    def scalars(self, rule, t, lr, step_state, hyperparameters):
        return self.engine.scalars(rule, t, lr, step_state, hyperparameters)

    def run_update(self, rule, p, g, slots, numbers):
        return self.engine.run_update(rule, p, g, slots, numbers)

    def run_tensor_update(self, rule, p, g, slots, numbers):
        """A tensor-level rule (Lamb, Muon, Adafactor): the same JAX engine (its helpers'
        JAX forms, :mod:`optimlab.engines.jax_tensor`)."""
        return self.engine.run_update(rule, p, g, slots, numbers)

    def number(self, value, dtype):
        """``value`` (a Python float or a traced number) as a 0-d array of ``dtype``."""
        return self.jnp.asarray(value, dtype)

    def l2_norm(self, grads):
        return self.engine.l2_norm(grads)

    def norm_scale(self, norm, clip, style):
        return self.engine.norm_scale(norm, clip, style)

    def clip_value(self, g, clip):
        return self.jnp.clip(g, -clip, clip)


class _Torch:
    """The torch backend: step numbers on the host, the rule on torch tensors."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        from ..torch._ops import torch_update

        self.torch = torch
        self.torch_update = torch_update

    def step_number(self, iterations):
        return int(keras.ops.convert_to_numpy(iterations)) + 1

    def rate(self, learning_rate):
        return float(keras.ops.convert_to_numpy(learning_rate))

    def state(self, variable):
        return float(keras.ops.convert_to_numpy(variable.value))

    def scalars(self, rule, t, lr, step_state, hyperparameters):
        if getattr(rule, "STEP_STATE", None) is not None:
            return rule.scalars(t, lr, tuple(step_state), **hyperparameters)
        return rule.scalars(t, lr, **hyperparameters), None

    def run_update(self, rule, p, g, slots, numbers):
        return self.torch_update(rule)(p, g, *slots, *numbers)

    def run_tensor_update(self, rule, p, g, slots, numbers):
        """A tensor-level rule (Lamb, Muon, Adafactor): the NumPy dialect's own ``update`` on
        the tensors' memory (``Tensor.numpy()`` of a CPU copy: norms, matrix products and
        means over whole axes, which the torch-ops form of the elementwise rules cannot run;
        Lamb's decay inside the trust ratio comes as its last number), with the
        host's step numbers; the results back as tensors of each input's device and dtype.
        A NaN or an infinity propagates without NumPy's warnings, as in torch."""
        import numpy as np

        def host(tensor):
            return None if tensor is None else tensor.detach().cpu().numpy()

        with np.errstate(all="ignore"):
            new = rule.update(host(p), host(g), *(host(s) for s in slots), *numbers)
        like = (p, *slots)
        return tuple(
            None if value is None else self.torch.as_tensor(np.asarray(value)).to(ref.device)
            for value, ref in zip(new, like, strict=True)
        )

    def number(self, value, dtype):
        return value  # a Python float: torch computes it in the tensor's dtype

    def l2_norm(self, grads):
        """sqrt(sum of squares) accumulated in float64, a Python float: the fused engine's
        parallel sum where every gradient is a CPU float32/float64 tensor (no float64 copy;
        :func:`optimlab.keras._torch_fused.l2_norm`), else torch's."""
        from . import _torch_fused

        norm = _torch_fused.l2_norm(grads)
        if norm is not None:
            return norm
        total = sum(self.torch.sum(g.detach().double() ** 2) for g in grads)
        return float(self.torch.sqrt(total)) if grads else 0.0

    def norm_scale(self, norm, clip, style):
        return clipping.norm_scale(norm, clip, style)

    def clip_value(self, g, clip):
        return self.torch.clamp(g, -clip, clip)


_MADE: dict = {}


def current():
    """The computing backend of ``keras.backend.backend()``; others are refused."""
    name = keras.backend.backend()
    if name not in BACKENDS:
        raise NotImplementedError(
            f"optimlab.keras runs on Keras's JAX and torch backends, not on {name!r} "
            f"(KERAS_BACKEND={name}); set KERAS_BACKEND to one of {', '.join(BACKENDS)} before "
            "importing keras"
        )
    if name not in _MADE:
        _MADE[name] = _Jax() if name == "jax" else _Torch()
    return _MADE[name]
