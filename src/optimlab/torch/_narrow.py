"""Narrow optimizer state and bfloat16 stochastic rounding for the PyTorch drop-ins (issue 16).

``state_dtype="float32" | "bfloat16" | "int8" | "int4"`` (an optimizer whose rule declares
``QUANTIZED_SLOTS``) stores those slots of every parameter of at least 4096 elements as
:mod:`optimlab.quantization.state` defines them, in the optimizer's ``state`` as torch tensors:

    "float32"   state[key]: float32, the parameter's shape (as torch.optim)
    "bfloat16"  state[key]: torch.bfloat16, the parameter's shape (round to nearest, ties even)
    "int8"      state[key]: torch.uint8 codes, the parameter's shape, and
                state[key + ".scales"]: float32, one per block of 256 elements (blockwise
                dynamic 8-bit, bit-equal to bitsandbytes'/torchao's codes)
    "int4"      state[key]: torch.uint8, two codes a byte, flat (ceil(numel / 2)), and
                state[key + ".scales"]: float32, one per block of 128 elements (torchao's
                AdamW4bit codes and packing)

so that ``state_dict()`` / ``load_state_dict()`` / ``torch.save`` carry them bit for bit. Each
step dequantizes the slots to float32, runs the rule, and requantizes after the parameter has
moved (the order of :mod:`optimlab.engines.reference`). On CPU tensors this is the fused block
kernel of :mod:`optimlab.quantization.kernels` run on ``Tensor.numpy()`` views (a bfloat16
tensor seen as uint16 bits); elsewhere (another device, ``engine="torch"``, a strided tensor)
the same steps in torch operations: :func:`dequantize`, the rule's torch-ops chain
(:mod:`optimlab.torch._ops`), :func:`quantize` / :func:`to_bfloat16`, each the NumPy
reference's operations one for one (float32 divisions, comparisons, products and integer bit
operations, which IEEE fixes), so both paths give the same bits.

``bf16_stochastic_round=True`` (any elementwise drop-in; ``seed`` an int, default 0): a
bfloat16 parameter is updated in float32 (the parameter and its gradient upcast, the moments
float32 or narrow as ``state_dtype`` says) and rounded back stochastically
(:mod:`optimlab.quantization.stochastic`: ``(bits + r) >> 16``, r uniform 16 bits), as
torchao's ``bf16_stochastic_round``. Each parameter draws r from its own ``torch.Generator``
(CPU, seeded by ``SeedSequence([seed, index of the parameter])``), whose state is kept in
``state[p]["bf16_sr_generator"]`` (uint8) and so saved and resumed with the state dict: a run
resumed from a checkpoint, in another process too, gives the same bits as one that never
stopped. A bfloat16 parameter of an optimizer with narrow state and without stochastic rounding
is also updated in float32 and then rounded to nearest.

Loading converts: every saved slot (float values of any dtype, bfloat16, or int8 codes with
their scales, whichever optimizer saved it) is turned into this optimizer's storage, exactly
where the storage is the same. float32 -> int8 loses at most half a gap of the dynamic code
per element: 0.70% (signed, first moments) or 0.35% (unsigned, second moments) of the
largest |value| of its block of 256, finer near 0 (on normal data the median relative error
is about 1%); float32 -> bfloat16 keeps 8 significant bits (relative error <= 2^-9);
int8 -> float32 is exact (the dequantized values), so float32 -> int8 -> float32 loses only
the first quantization. torch.optim knows no narrow storage (its load casts the codes to
the parameter's dtype as numbers): give it :func:`float32_state_dict` instead.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import torch

from .._validation import show
from ..engines import fused
from ..quantization import kernels, stochastic
from ..quantization.blockwise import MIN_SCALE, block_count
from ..quantization.codes import BLOCK_SIZE, BLOCK_SIZE_4, MIN_QUANTIZED_SIZE, code4, dynamic_code
from ..quantization.state import STATE_DTYPES, Bfloat16State, Int4State, Int8State
from ._fused import FusedView, HeldView

#: the state key of a parameter's stochastic-rounding generator (its ``get_state()``)
GENERATOR_KEY = "bf16_sr_generator"

#: the suffix of an int8 slot's scales in the state
SCALES = ".scales"
_NARROW_PARAM_DTYPES = (torch.float32, torch.bfloat16)


@dataclasses.dataclass(frozen=True)
class Config:
    """What an optimizer was asked for: ``state_dtype``, ``stochastic`` (bf16 stochastic
    rounding) and its ``seed``."""

    state_dtype: str = "float32"
    stochastic: bool = False
    seed: int = 0


def configure(cls, state_dtype, bf16_stochastic_round, seed, defaults: dict) -> Config | None:
    """The checked options of a drop-in (None where both are off: nothing changes). Refused:
    a ``state_dtype`` outside ``STATE_DTYPES``, a narrow one for a rule without
    ``QUANTIZED_SLOTS`` (or without a fused kernel: SparseAdam), a non-bool
    ``bf16_stochastic_round``, a ``seed`` that is no int in [0, 2^63) or is given without
    stochastic rounding, and ``differentiable=True`` with either option."""
    name = cls.__name__
    if not isinstance(state_dtype, str) or state_dtype not in STATE_DTYPES:
        raise ValueError(
            f"state_dtype must be one of {', '.join(map(repr, STATE_DTYPES))}, got "
            f"{show(state_dtype)}"
        )
    if state_dtype != "float32":
        quantized = getattr(cls.rule, "QUANTIZED_SLOTS", None)
        if not quantized or getattr(cls.rule, "TENSOR", False) or not cls.fused_kernel:
            why = (
                "its updates are sparse rows"
                if quantized and not cls.fused_kernel
                else getattr(cls.rule, "FLOAT32_STATE", None)
                or "its rule declares no QUANTIZED_SLOTS"
            )
            raise ValueError(
                f"state_dtype must be 'float32' for {name} ({why}), got {state_dtype!r}"
            )
    if bf16_stochastic_round is True and not cls.fused_kernel:
        raise ValueError(
            f"bf16_stochastic_round must be False for {name} (its updates are sparse rows)"
        )
    if type(bf16_stochastic_round) is not bool:
        raise TypeError(
            f"bf16_stochastic_round must be True or False, got {show(bf16_stochastic_round)}"
        )
    if seed is not None:
        if not bf16_stochastic_round:
            raise ValueError(
                f"seed must be left out unless bf16_stochastic_round=True (it seeds the "
                f"stochastic rounding), got {show(seed)}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"seed must be an int in [0, 2**63), got {show(seed)}")
        if not 0 <= int(seed) < 2**63:
            raise ValueError(f"seed must be an int in [0, 2**63), got {show(seed)}")
    if state_dtype == "float32" and not bf16_stochastic_round:
        return None
    if defaults.get("differentiable"):
        raise ValueError(
            "differentiable=True records the step with autograd in the parameter's own dtype: "
            "with it, state_dtype must be 'float32' and bf16_stochastic_round False, got "
            f"state_dtype={state_dtype!r}, bf16_stochastic_round={bf16_stochastic_round!r}"
        )
    return Config(state_dtype, bf16_stochastic_round, 0 if seed is None else int(seed))


def check_hyperparameters(opt, group: dict, where: str = "") -> None:
    """Refuse a group whose hyperparameters the narrow state cannot take: the rule's
    ``narrow_state_refusal`` (e.g. RMSprop's ``centered=True``), checked wherever the group is
    (at construction, on a new group, after a value changed between steps)."""
    cfg = config(opt)
    refusal = getattr(opt.rule, "narrow_state_refusal", None)
    if cfg is None or cfg.state_dtype == "float32" or refusal is None:
        return
    reason = refusal(**opt.rule_arguments(group))
    if reason is not None:
        raise ValueError(
            f"{where}state_dtype={cfg.state_dtype!r} cannot take {reason}: state_dtype must "
            f"be 'float32' for it"
        )


def config(opt) -> Config | None:
    return opt.__dict__.get("_narrow")


def check_group(opt, group: dict) -> None:
    """Refuse the parameters of a new group that narrow state cannot take (TypeError naming
    the parameter): another dtype than float32/bfloat16, a DTensor."""
    cfg = config(opt)
    if cfg is None:
        return
    start = sum(len(g["params"]) for g in opt.param_groups if g is not group)
    for i, p in enumerate(group["params"]):
        if getattr(p, "placements", None) is not None:
            raise TypeError(
                f"parameter {start + i} must be a plain tensor with state_dtype="
                f"{cfg.state_dtype!r} / bf16_stochastic_round={cfg.stochastic!r}, got a DTensor"
            )
        if cfg.state_dtype != "float32" and p.dtype not in _NARROW_PARAM_DTYPES:
            raise TypeError(
                f"state_dtype={cfg.state_dtype!r} keeps float32 moments narrow: parameter "
                f"{start + i} must be float32 or bfloat16, got {p.dtype}"
            )


# -- storage -----------------------------------------------------------------------------------


def _signs(opt) -> dict:
    """state key -> "signed" / "unsigned" for the slots the rule may store narrow."""
    quantized = getattr(opt.rule, "QUANTIZED_SLOTS", None) or {}
    names = [name for name, _ in opt.rule.SLOTS]
    return {k: quantized[n] for k, n in zip(opt.slot_keys, names, strict=False) if n in quantized}


def layout(opt, p, key: str):
    """How slot ``key`` of ``p`` is stored: ``"int8"``, ``"int4"``, ``"bfloat16"`` or a torch
    dtype."""
    cfg = config(opt)
    if cfg is None:
        return p.dtype
    if (
        cfg.state_dtype != "float32"
        and key in _signs(opt)
        and p.numel() >= MIN_QUANTIZED_SIZE
        and p.dtype in _NARROW_PARAM_DTYPES
    ):
        return cfg.state_dtype
    return torch.float32 if p.dtype == torch.bfloat16 else p.dtype


def stored_shape(opt, p, index: int, key: str, shape: tuple) -> tuple:
    """The shape slot ``key`` of ``p`` (parameter ``index``, a slot of ``shape``) has: that
    shape, or ``(ceil(numel / 2),)`` for int4 codes, two a byte (this optimizer's layout, or
    the uint8 codes of a checkpoint being loaded, which :func:`before_load` has checked and
    set aside: torch's load casts them to the parameter's dtype, :func:`after_load` converts
    them)."""
    saved = opt.__dict__.get("_narrow_pending", {}).get(index, {}).get(key)
    if isinstance(saved, torch.Tensor):  # being loaded: as saved (floats have the slot's)
        return tuple(saved.shape) if saved.dtype == torch.uint8 else shape
    if layout(opt, p, key) == "int4":
        return (-(-int(np.prod(shape, dtype=np.int64)) // 2),)
    return shape


def handles(opt, p) -> bool:
    """Whether ``p`` steps here (narrow slots, or a bfloat16 parameter updated in float32)."""
    cfg = config(opt)
    if cfg is None:
        return False
    if p.dtype == torch.bfloat16:
        return True
    return any(not isinstance(layout(opt, p, k), torch.dtype) for k in opt.slot_keys)


@functools.cache
def _code(signed: bool, device) -> torch.Tensor:
    return torch.from_numpy(dynamic_code(signed).copy()).to(device)


@functools.cache
def _code4(signed: bool, device) -> torch.Tensor:
    return torch.from_numpy(code4(signed).copy()).to(device)


def codes_kind(codes: torch.Tensor, scales: torch.Tensor) -> str:
    """Which blockwise storage uint8 ``codes`` with their ``scales`` are: ``"int8"`` (one
    code an element, a scale per 256) or ``"int4"`` (two a byte, a scale per 128: four
    times as many scales for as many bytes)."""
    return "int8" if scales.numel() == block_count(codes.numel()) else "int4"


def dequantize4(packed: torch.Tensor, scales: torch.Tensor, signed: bool, shape) -> torch.Tensor:
    """float32 ``code4[code] * scale`` of each element's block of 128, of ``shape``
    (blockwise.dequantize4: the high nibble first)."""
    code = _code4(bool(signed), packed.device)
    n = int(np.prod(tuple(shape), dtype=np.int64))
    flat = packed.reshape(-1)
    codes = torch.stack([flat >> 4, flat & 15], dim=1).reshape(-1)[:n]
    per_element = scales.to(torch.float32).repeat_interleave(BLOCK_SIZE_4)[:n]
    return (code[codes.long()] * per_element).reshape(tuple(shape))


def quantize4(x: torch.Tensor, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(packed uint8 of ceil(numel / 2), scales float32 per block of 128)`` of float32
    ``x``: the operations of blockwise.quantize4 (the scale of :func:`quantize`, four
    branchless halvings, the rounding step, two codes a byte) in torch."""
    code = _code4(bool(signed), x.device)
    y, scale = _scaled_blocks(x, BLOCK_SIZE_4)
    n = x.numel()
    k = torch.where(y >= code[8], 8, 0)
    for step in (4, 2, 1):
        k = k + torch.where(y >= code[k + step], step, 0)
    up = torch.clamp(k + 1, max=15)
    low, high = code[k], code[up]
    codes = torch.where((y - low) >= (high - low) * 0.5, up, k).to(torch.uint8).reshape(-1)[:n]
    if n % 2:
        codes = torch.cat([codes, codes.new_zeros(1)])
    return (codes[0::2] << 4) | codes[1::2], scale


def dequantize(codes: torch.Tensor, scales: torch.Tensor, signed: bool) -> torch.Tensor:
    """float32 ``code[codes] * scale`` of each element's block (blockwise.dequantize)."""
    code = _code(bool(signed), codes.device)
    n = codes.numel()
    per_element = scales.to(torch.float32).repeat_interleave(BLOCK_SIZE)[:n]
    return (code[codes.reshape(-1).long()] * per_element).reshape(codes.shape)


def _scaled_blocks(x: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """blockwise.scaled_blocks in torch: float32 ``x`` in zero-padded blocks of ``size``,
    each divided by ``max(absmax, 1e-12)``, and those scales."""
    flat = x.reshape(-1).to(torch.float32)
    n = flat.numel()
    pad = block_count(n, size) * size - n
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    blocks = flat.reshape(-1, size)
    scale = torch.clamp(blocks.abs().amax(dim=1), min=float(MIN_SCALE))
    return blocks / scale[:, None], scale


def quantize(x: torch.Tensor, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes uint8 of x's shape, scales float32 per block)`` of float32 ``x``: the
    operations of blockwise.quantize (absmax clipped at 1e-12, y = x / s, eight branchless
    search steps, round to nearest with ties up) in torch."""
    code = _code(bool(signed), x.device)
    y, scale = _scaled_blocks(x, BLOCK_SIZE)
    n = x.numel()
    k = torch.where(y >= code[128], 128, 0)
    for step in (64, 32, 16, 8, 4, 2, 1):
        k = k + torch.where(y >= code[k + step], step, 0)
    up = torch.clamp(k + 1, max=255)
    low, high = code[k], code[up]
    go_up = (y - low) >= (high - low) * 0.5
    codes = torch.where(go_up, up, k).to(torch.uint8).reshape(-1)[:n]
    return codes.reshape(x.shape), scale


def _bits(x: torch.Tensor) -> torch.Tensor:
    """The float32 bits of ``x`` as non-negative int64."""
    return x.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF


def _as_bfloat16(bits16: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2^16) as the bfloat16 of those bits."""
    signed = torch.where(bits16 >= 0x8000, bits16 - 0x10000, bits16)
    return signed.to(torch.int16).view(torch.bfloat16)


def _quiet(bits: torch.Tensor) -> torch.Tensor:
    return ((bits >> 16) & 0x8000) | 0x7FC0


def to_bfloat16(x: torch.Tensor) -> torch.Tensor:
    """The bfloat16 nearest each float32 of ``x`` (ties to even, NaN -> 0x7FC0 with x's sign):
    state.to_bfloat16_bits in integer operations."""
    x = x.to(torch.float32)
    bits = _bits(x)
    rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
    return _as_bfloat16(torch.where(torch.isnan(x), _quiet(bits), rounded) & 0xFFFF)


def round_stochastic(x: torch.Tensor, random: torch.Tensor) -> torch.Tensor:
    """float32 ``x`` rounded stochastically to bfloat16 with the integers ``random`` (x's
    shape, low 16 bits used): stochastic.round_bits in integer torch operations."""
    bits = _bits(x)
    carried = (bits + (random.to(torch.int64) & 0xFFFF)) >> 16
    return _as_bfloat16(torch.where(torch.isnan(x), _quiet(bits), carried) & 0xFFFF)


def new_slot(opt, p, key: str, value, state: dict) -> torch.Tensor:
    """A new state buffer ``key`` of ``p`` at ``value``, stored as :func:`layout` says (an
    int8 slot's scales go to ``state[key + ".scales"]``)."""
    kind = layout(opt, p, key)
    if isinstance(kind, torch.dtype):
        return torch.full_like(p, value, dtype=kind, memory_format=torch.preserve_format)
    full = torch.full(p.shape, value, dtype=torch.float32, device=p.device)
    if kind == "bfloat16":
        return to_bfloat16(full)
    signed = _signs(opt)[key] == "signed"
    if kind == "int4" and value == 0:  # Int4State's start: the unsigned code has no 0, so
        start = Int4State(tuple(p.shape), signed)  # 0 is its least code times a scale of 0
        state[key + SCALES] = torch.from_numpy(start.scales).to(p.device)
        return torch.from_numpy(start.codes).to(p.device)
    codes, scales = (quantize4 if kind == "int4" else quantize)(full, signed)
    state[key + SCALES] = scales
    return codes


def _values(opt, state: dict, key: str, value: torch.Tensor, shape) -> torch.Tensor:
    """The float values a stored slot of a parameter of ``shape`` holds (int8 or int4 codes
    dequantized, float32)."""
    if value.dtype == torch.uint8:
        scales, signed = state[key + SCALES], _signs(opt)[key] == "signed"
        if codes_kind(value, scales) == "int4":
            return dequantize4(value, scales, signed, shape)
        return dequantize(value, scales, signed)
    return value


def _store(opt, p, state: dict, key: str, values: torch.Tensor, kind) -> None:
    if isinstance(kind, torch.dtype):
        state[key] = values.to(device=p.device, dtype=kind, copy=True)
        state.pop(key + SCALES, None)
    elif kind == "bfloat16":
        state[key] = to_bfloat16(values.to(p.device))
        state.pop(key + SCALES, None)
    else:
        how = quantize4 if kind == "int4" else quantize
        codes, scales = how(values.to(p.device, torch.float32), _signs(opt)[key] == "signed")
        state[key], state[key + SCALES] = codes, scales


# -- stochastic rounding -----------------------------------------------------------------------


def _index(opt, p) -> int:
    for i, q in enumerate(itertools.chain.from_iterable(g["params"] for g in opt.param_groups)):
        if q is p:
            return i
    raise KeyError("parameter not in the optimizer")  # pragma: no cover


def random_bits(opt, p) -> torch.Tensor:
    """``p.numel()`` uniform integers in [0, 2^16) (int32, CPU) from ``p``'s generator, whose
    state is then written back to ``state[p][GENERATOR_KEY]``."""
    state = opt.state[p]
    saved = state.get(GENERATOR_KEY)
    generator = torch.Generator()
    if saved is None:
        seed = np.random.SeedSequence([config(opt).seed, _index(opt, p)])
        generator.manual_seed(int(seed.generate_state(1, np.uint64)[0]))
    else:
        generator.set_state(saved)
    r = torch.randint(0, 1 << 16, (p.numel(),), generator=generator, dtype=torch.int32)
    if saved is None:
        state[GENERATOR_KEY] = generator.get_state()
    else:
        saved.copy_(generator.get_state())
    return r


# -- the step ----------------------------------------------------------------------------------


class NarrowView(HeldView):
    """The CPU fast path of a parameter stepped here: NumPy views of the parameter (a float32
    scratch copy of a bfloat16 one), of its narrow slots (as :class:`Int8State` /
    :class:`Bfloat16State` over the tensors' memory) and plain slots, for the block kernel.
    The interface of :class:`optimlab.torch._fused.FusedView` (``grad_array``, ``run``; and
    ``matches``, ``advance`` from their shared :class:`~optimlab.torch._fused.HeldView`)."""

    __slots__ = (
        "opt",
        "param",
        "state",
        "keys",
        "held",
        "step",
        "step_array",
        "slots",
        "p32",
        "g32",
        "bits",
        "shape",
        "narrow",
        "pointer",
        "spec",
    )

    @classmethod
    def make(cls, opt, p, state, keys):
        if p.device.type != "cpu" or not p.is_contiguous() or p.layout != torch.strided:
            return None
        if p.dtype not in _NARROW_PARAM_DTYPES:
            return None
        view = cls()
        signs = _signs(opt)
        slots, held = [], []
        try:
            for key in keys:
                if key is None:
                    slots.append(None)
                    continue
                t = state[key]
                if t.device.type != "cpu" or not t.is_contiguous():
                    return None
                held.append((key, t))
                if t.dtype == torch.uint8:
                    scales = state[key + SCALES]
                    held.append((key + SCALES, scales))
                    if codes_kind(t, scales) == "int4":
                        buffer = Int4State.__new__(Int4State)
                        buffer._shape = tuple(p.shape)
                    else:
                        buffer = Int8State.__new__(Int8State)
                    buffer.signed = signs[key] == "signed"
                    buffer.codes, buffer.scales = t.numpy().reshape(-1), scales.numpy()
                elif t.dtype == torch.bfloat16:
                    buffer = Bfloat16State.__new__(Bfloat16State)
                    buffer.signed = True
                    buffer.bits = t.view(torch.int16).numpy().reshape(-1).view(np.uint16)
                elif t.dtype == torch.float32:
                    buffer = t.numpy().reshape(-1)
                else:
                    return None
                slots.append(buffer)
            if p.dtype == torch.bfloat16:
                view.bits = p.detach().view(torch.int16).numpy().reshape(-1)
                view.p32 = torch.empty(p.numel(), dtype=torch.float32)
                view.g32 = torch.empty(p.numel(), dtype=torch.float32)
            else:
                view.bits = None
                view.p32 = p.detach().reshape(-1)
                view.g32 = None
            step = None if state is None else state.get("step")
            step_array = None
            if (
                step is not None
                and step.device.type == "cpu"
                and step.dim() == 0
                and step.dtype in (torch.float32, torch.float64)
            ):
                step_array = step.numpy()
        except (RuntimeError, TypeError):
            return None
        view.opt, view.param, view.state, view.keys = opt, p, state, keys
        view.held, view.slots, view.shape = tuple(held), slots, tuple(p.shape)
        view.step, view.step_array = step, step_array
        view.narrow = any(s is not None and not isinstance(s, np.ndarray) for s in slots)
        view.pointer, view.spec = p.data_ptr(), None  # (DTensors are refused: no shard)
        return view

    def grad_array(self, g):
        """The gradient as the float32 array the kernel reads (a bfloat16 gradient of a
        bfloat16 parameter upcast into a scratch buffer), or None."""
        if g.is_sparse or g.device.type != "cpu" or g.requires_grad or g.shape != self.shape:
            return None
        if not g.is_contiguous() or g.dtype is not self.param.dtype:
            return None
        if self.g32 is None:
            return g.numpy().reshape(-1)
        return _widen(g.view(torch.int16).numpy().reshape(-1), self.g32.numpy())

    def run(self, grad, scalars, pipe, pipe_key) -> None:
        """One step: the block kernel (or the plain fused kernel where no slot is narrow) on
        the float32 parameter, then a bfloat16 parameter rounded back."""
        opt, p = self.opt, self.param
        p32 = self.p32.numpy()
        if self.bits is not None:
            _widen(self.bits, p32)
        if self.narrow:
            kernels.apply(opt.rule, p32, grad, self.slots, scalars, pipe)
        else:
            fused.apply(opt.rule, p32, grad, self.slots, scalars, pipe)
        if self.bits is None:
            return
        if config(opt).stochastic:
            stochastic.round_bits_numba(p32, random_bits(opt, p).numpy(), out=self.bits)
        else:
            p.detach().copy_(self.p32.reshape(p.shape))


def _widen(bits, out):
    """float32 ``out`` = the bfloat16 of the int16 ``bits`` (exact: the bits shifted into the
    upper half; one NumPy pass, about 5x faster than torch's bfloat16 -> float32 copy_)."""
    np.left_shift(bits.view(np.uint16), 16, out=out.view(np.uint32), dtype=np.uint32)
    return out


def make_view(opt, p, state, keys):
    """The view a parameter steps through: :class:`NarrowView` where :func:`handles` says so
    (None if its tensors are not on the CPU...), else :meth:`FusedView.make`."""
    if handles(opt, p):
        return NarrowView.make(opt, p, state, keys)
    return FusedView.make(opt.rule, p, state, keys)


def apply_torch(opt, p, g, state, keys, scalars, maximize, l2, decoupled_wdlr, loss_scale):
    """The step of a parameter :func:`handles` in torch operations: the slots dequantized to
    float32, the rule's torch-ops chain on the float32 parameter, the slots requantized, a
    bfloat16 parameter rounded back (stochastically if asked)."""
    bf16 = p.dtype == torch.bfloat16
    if g.is_sparse:
        # only optimizers whose zero gradient changes nothing take sparse gradients (SGD,
        # Adagrad; SparseAdam refuses both options): the dense update is the sparse one
        g = g.to_dense()
    work = p.detach().to(torch.float32) if bf16 else p
    grad = g.to(torch.float32) if g.dtype != work.dtype else g
    values, kinds = [], []
    for key in keys:
        if key is None:
            values.append(None)
            kinds.append(None)
            continue
        stored = state[key]
        kinds.append(layout(opt, p, key))
        value = _values(opt, state, key, stored, p.shape)
        values.append(value.to(torch.float32) if value.dtype != work.dtype else value)
    opt._apply_torch(work, grad, values, scalars, maximize, l2, decoupled_wdlr, loss_scale, False)
    for key, value, kind in zip(keys, values, kinds, strict=True):
        if key is None or value is state[key]:
            continue
        if kind in ("int8", "int4"):
            how = quantize4 if kind == "int4" else quantize
            codes, scales = how(value, _signs(opt)[key] == "signed")
            state[key].copy_(codes)
            state[key + SCALES].copy_(scales)
        elif kind == "bfloat16":
            state[key].copy_(to_bfloat16(value))
        else:
            state[key].copy_(value)
    if bf16:
        if config(opt).stochastic:
            r = random_bits(opt, p).to(p.device).reshape(p.shape)
            p.detach().copy_(round_stochastic(work, r))
        else:
            p.detach().copy_(work)


# -- loading -----------------------------------------------------------------------------------


def before_load(opt, state_dict):
    """Validate and set aside what torch's ``load_state_dict`` would cast to the parameter's
    dtype (int8 codes and scales, bfloat16 or float32 slots of a parameter stored otherwise,
    the generators): returns the state dict without the extra keys (the caller's is not
    modified) and keeps the originals for :func:`after_load`. A saved slot that is neither
    float values nor uint8 codes with their scales is refused (ValueError naming the
    parameter and key) before anything changes."""
    if not isinstance(state_dict, dict):
        return state_dict
    saved_state, saved_groups = state_dict.get("state"), state_dict.get("param_groups")
    if not isinstance(saved_state, dict) or not isinstance(saved_groups, list | tuple):
        return state_dict
    try:
        ids = list(itertools.chain.from_iterable(g["params"] for g in saved_groups))
    except (TypeError, KeyError):
        return state_dict
    ours = list(itertools.chain.from_iterable(g["params"] for g in opt.param_groups))
    if len(ids) != len(ours):
        return state_dict  # torch's refusal follows
    signs = _signs(opt)
    slot_keys = set(opt.slot_keys)
    pending, stripped = {}, dict(saved_state)
    for index, (key_id, p) in enumerate(zip(ids, ours, strict=True)):
        value = saved_state.get(key_id)
        if not isinstance(value, dict):
            continue
        extras = [
            k for k in value if isinstance(k, str) and (k.endswith(SCALES) or k == GENERATOR_KEY)
        ]
        codes = [k for k in value if k in slot_keys and _is_tensor(value[k], torch.uint8)]
        if not (extras or codes or handles(opt, p)):
            continue
        for key in extras:
            if key == GENERATOR_KEY:
                _check_generator(index, value[key])
                continue
            base = key[: -len(SCALES)]
            if base not in codes:
                raise ValueError(
                    f"state of parameter {index}: {key!r} are the scales of int8 or int4 "
                    f"codes, but {base!r} holds no uint8 codes"
                )
        for key in value:
            if key not in slot_keys:
                continue
            t = value[key]
            if not isinstance(t, torch.Tensor):
                continue  # (the tensor check of load_state_dict names it)
            if t.dtype == torch.uint8:
                if key not in signs:
                    raise ValueError(
                        f"state of parameter {index}: {key!r} holds uint8 codes, but "
                        f"{type(opt).__name__} stores no {key!r} in int8 or int4"
                    )
                n = p.numel()
                if t.numel() == n:  # int8: one code an element, a scale per 256
                    blocks, size = block_count(n), BLOCK_SIZE
                elif t.dim() == 1 and t.numel() == -(-n // 2):  # int4: two a byte, per 128
                    blocks, size = block_count(n, BLOCK_SIZE_4), BLOCK_SIZE_4
                else:
                    raise ValueError(
                        f"state of parameter {index}: {key!r} must hold {n} int8 codes (the "
                        f"parameter's shape) or {-(-n // 2)} bytes of int4 codes, got "
                        f"{_describe(t)}"
                    )
                scales = value.get(key + SCALES)
                if not (_is_tensor(scales, torch.float32) and tuple(scales.shape) == (blocks,)):
                    raise ValueError(
                        f"state of parameter {index}: {key + SCALES!r} must be a float32 "
                        f"tensor of shape ({blocks},) (one scale per block of {size}), "
                        f"got {_describe(scales)}"
                    )
            elif not t.is_floating_point():
                raise ValueError(
                    f"state of parameter {index}: {key!r} must be a floating tensor or uint8 "
                    f"int8 codes, got dtype {t.dtype}"
                )
        pending[index] = {k: value[k] for k in value if k in slot_keys or k in extras}
        stripped[key_id] = {k: v for k, v in value.items() if k not in extras}
    opt.__dict__["_narrow_pending"] = pending
    return {**state_dict, "state": stripped}


def _is_tensor(value, dtype) -> bool:
    return (
        isinstance(value, torch.Tensor) and value.dtype == dtype and value.layout == torch.strided
    )


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"dtype {value.dtype}, shape {tuple(value.shape)}"
    return show(value)


def _check_generator(index: int, value) -> None:
    problem = not _is_tensor(value, torch.uint8) or value.dim() != 1
    if not problem:
        try:
            torch.Generator().set_state(value.cpu())
        except (RuntimeError, TypeError, ValueError):
            problem = True
    if problem:
        raise ValueError(
            f"state of parameter {index}: {GENERATOR_KEY!r} must be a torch.Generator's "
            f"get_state() (a 1-D uint8 tensor), got {_describe(value)}"
        )


def after_load(opt) -> None:
    """Turn the saved slots set aside by :func:`before_load` into this optimizer's storage
    (the same storage: copied bit for bit; another: converted through the float values)."""
    pending = opt.__dict__.pop("_narrow_pending", None)
    if not pending:
        return
    cfg = config(opt)
    ours = list(itertools.chain.from_iterable(g["params"] for g in opt.param_groups))
    for index, saved in pending.items():
        p = ours[index]
        state = opt.state[p]
        for key, value in saved.items():
            if key == GENERATOR_KEY:
                if cfg is not None and cfg.stochastic and p.dtype == torch.bfloat16:
                    state[key] = value.detach().cpu().clone()
                continue
            if key.endswith(SCALES):
                continue
            kind = layout(opt, p, key)
            if value.dtype == torch.uint8 and codes_kind(value, saved[key + SCALES]) == kind:
                state[key] = value.detach().to(p.device, copy=True)
                state[key + SCALES] = saved[key + SCALES].detach().to(p.device, copy=True)
                continue
            _store(opt, p, state, key, _values(opt, saved, key, value.detach(), p.shape), kind)


def state_dtype_of(opt) -> str:
    cfg = config(opt)
    return "float32" if cfg is None else cfg.state_dtype


def stochastic_of(opt) -> bool:
    cfg = config(opt)
    return cfg is not None and cfg.stochastic


def float32_state_dict(opt) -> dict:
    """``opt.state_dict()`` with every narrow slot as float32 values (int8 or int4 codes
    dequantized, bfloat16 widened, exactly) and the ``.scales`` and generator entries left out: what
    ``torch.optim`` (or any optimizer that knows no narrow storage) loads. The tensors that
    needed no conversion are the optimizer's own, as in ``state_dict()``."""
    saved = opt.state_dict()
    signs = _signs(opt)
    ours = list(itertools.chain.from_iterable(g["params"] for g in opt.param_groups))
    state = {}
    for index, entry in saved["state"].items():
        out = {}
        for key, value in entry.items():
            if key == GENERATOR_KEY or (isinstance(key, str) and key.endswith(SCALES)):
                continue
            if isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and key in signs:
                value = _values(opt, entry, key, value, ours[index].shape)
            elif isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
                value = value.to(torch.float32)
            out[key] = value
        state[index] = out
    return {**saved, "state": state}
