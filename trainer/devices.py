"""The device and weight dtype a model runs on: shared by training and the generation engine.

torch is imported inside the functions, so importing this module (and the generation package,
which re-exports both) loads nothing heavy.
"""

from __future__ import annotations


def pick_device(device: str = "auto") -> str:
    import torch  # lazy: nothing heavy at import

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: str = "auto"):
    """The torch dtype the weights run in: float32, bfloat16 or float16, or for "auto" bfloat16 on a
    CUDA device that has it and float32 elsewhere. On CPU bfloat16 weights gain only 10-25% (the
    cache is bfloat16 either way) and grow the process by ~1 MB per distinct batch shape (oneDNN
    keeps reordered weights per shape): see bench/README.md."""
    import torch  # lazy: nothing heavy at import

    named = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype != "auto":
        try:
            return named[str(dtype)]
        except KeyError:
            raise ValueError(f"dtype must be auto, {', '.join(named)}, not {dtype!r}") from None
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32
