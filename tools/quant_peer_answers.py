"""Write tests/quantization_peers.npz: what bitsandbytes and torchao answer for the 8-bit code
and blockwise quantization, torchao for its 4-bit codes (AdamW4bit's, packed two a byte as
its ``OptimState4bit`` packs them), and torch for bfloat16 rounding, on fixed inputs, so that
the cheap tests compare optimlab with the peers without importing them (about 8 s of imports).

    python tools/quant_peer_answers.py     (needs torchao 0.18 and bitsandbytes 0.50: the
                                            ``quant-peers`` extra of pyproject.toml)

Inputs (seeded): for each code, normal random blocks at scales 1e-8..1e2 (squared for the
unsigned code), and adversarial blocks holding every code value, every float32 midpoint of two
neighbours and the floats just above and below it (the ties and near-ties), with one block of
zeros. ``tests/test_quantization.py`` reruns the peers live under HYPOTHESIS_PROFILE=explore.
"""

from __future__ import annotations

import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "quantization_peers.npz")


def inputs(signed: bool) -> dict[str, np.ndarray]:
    """The named float32 inputs of one code (see the module's docstring)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    from optimlab.quantization.codes import dynamic_code

    rng = np.random.default_rng(16 + signed)
    blocks = []
    for scale in (1e-8, 1e-4, 1.0, 1e2):
        x = rng.standard_normal(256 * 2).astype(np.float32) * np.float32(scale)
        blocks.append(x if signed else x * x)
    random = np.concatenate(blocks + [rng.standard_normal(37).astype(np.float32) ** 2])
    code = dynamic_code(signed)
    mids = ((code[:-1].astype(np.float64) + code[1:]) / 2).astype(np.float32)
    points = np.concatenate(
        [code, mids, np.nextafter(mids, np.float32(2)), np.nextafter(mids, np.float32(-2))]
    )
    rows = [np.append(points[j : j + 255], np.float32(1.0)) for j in range(0, points.size, 255)]
    adversarial = np.concatenate([np.zeros(256, np.float32), *rows]).astype(np.float32)
    return {"random": random, "adversarial": adversarial}


def inputs4(signed: bool) -> dict[str, np.ndarray]:
    """The inputs of one 4-bit code, as :func:`inputs` in blocks of 128: normal random blocks
    at scales 1e-8..1e2 (squared for the unsigned code), and adversarial blocks of every code
    value, every float32 midpoint of two neighbours and the floats next to it, each block
    ending in 1.0 so that its scale is 1 (the size a multiple of 128, as torchao requires)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    from optimlab.quantization.codes import code4

    rng = np.random.default_rng(32 + signed)
    blocks = []
    for scale in (1e-8, 1e-4, 1.0, 1e2):
        x = rng.standard_normal(128 * 2).astype(np.float32) * np.float32(scale)
        blocks.append(x if signed else x * x)
    code = code4(signed)
    mids = ((code[:-1].astype(np.float64) + code[1:]) / 2).astype(np.float32)
    points = np.concatenate(
        [code, mids, np.nextafter(mids, np.float32(2)), np.nextafter(mids, np.float32(-2))]
    )
    if not signed:
        points = np.concatenate([points, np.float32([0.0, 0.01, 0.03125, 0.0312501])])
    row = np.concatenate([points, np.zeros(127 - points.size, np.float32), [np.float32(1.0)]])
    adversarial = np.concatenate([np.zeros(128, np.float32), row]).astype(np.float32)
    return {"random": np.concatenate(blocks), "adversarial": adversarial}


def main() -> None:
    import bitsandbytes
    import bitsandbytes.functional as bnb_functional
    import torch
    import torchao
    from torchao.optim import quant_utils

    out = {
        "versions": np.array(
            [torch.__version__, bitsandbytes.__version__, torchao.__version__], dtype="U32"
        )
    }
    for signed in (True, False):
        tag = "signed" if signed else "unsigned"
        bnb_code = bnb_functional.create_dynamic_map(signed=signed)
        out[f"bnb_code_{tag}"] = bnb_code.numpy()
        out[f"torchao_code_{tag}"] = np.array(
            quant_utils.create_dynamic_map(signed=signed), dtype=np.float32
        )
        qmap = torch.tensor(out[f"torchao_code_{tag}"])
        for name, x in inputs(signed).items():
            key = f"{tag}_{name}"
            out[f"input_{key}"] = x
            padded = np.concatenate([x, np.zeros(-x.size % 256, np.float32)])
            scaled, scale = quant_utils.scale_tensor(torch.from_numpy(padded), 256)
            codes = quant_utils.quantize_8bit_with_qmap(scaled, qmap)
            out[f"torchao_codes_{key}"] = codes.numpy()[: x.size]
            out[f"torchao_scales_{key}"] = scale.numpy()
            out[f"torchao_dequant_{key}"] = quant_utils.dequant_with_qmap(
                codes, qmap, scale
            ).numpy()[: x.size]
            bq, absmax = torch.ops.bitsandbytes.quantize_blockwise(
                torch.from_numpy(x.copy()), bnb_code.clone(), 256
            )
            out[f"bnb_codes_{key}"] = bq.numpy()
            out[f"bnb_absmax_{key}"] = absmax.numpy()
            out[f"bnb_dequant_{key}"] = torch.ops.bitsandbytes.dequantize_blockwise(
                bq, absmax, bnb_code.clone(), 256, torch.float32
            ).numpy()
    from torchao.optim import subclass_4bit

    for signed in (True, False):
        tag = "signed" if signed else "unsigned"
        qmap_values = (
            subclass_4bit.get_qmap_signed() if signed else subclass_4bit.get_qmap_unsigned()
        )
        qmap = torch.tensor(qmap_values)
        out[f"torchao_code4_{tag}"] = qmap.numpy()
        for name, x in inputs4(signed).items():
            key = f"{tag}_{name}"
            out[f"input4_{key}"] = x
            scaled, scale = quant_utils.scale_tensor(torch.from_numpy(x.copy()), 128)
            codes = quant_utils.quantize_4bit_with_qmap(scaled, qmap)
            out[f"torchao_packed4_{key}"] = ((codes[::2] << 4) | codes[1::2]).numpy()
            out[f"torchao_scales4_{key}"] = scale.numpy()
            out[f"torchao_dequant4_{key}"] = quant_utils.dequant_with_qmap(
                codes, qmap, scale
            ).numpy()
    rng = np.random.default_rng(1616)
    x = (rng.standard_normal(4096) * 10.0 ** rng.uniform(-40, 38, 4096)).astype(np.float32)
    x[:8] = [np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-45, 1.00390625]
    out["input_bf16"] = x
    out["torch_bf16_bits"] = torch.from_numpy(x).bfloat16().view(torch.int16).numpy()
    np.savez_compressed(OUT, **out)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
