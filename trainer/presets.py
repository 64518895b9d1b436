"""From-scratch model sizes. Parameter counts exclude the (tied) embedding of ~4k characters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int   # tokens: 40 of prompt + up to ~300 characters of copy
    batch_size: int    # sequences per optimiser step
    learning_rate: float
    warmup_steps: int
    dropout: float


PRESETS = {
    # 4 × 12 × 256² ≈ 3.1M parameters: ~2 epochs of AdvertiseGen in 3 minutes on 2 CPU cores.
    "demo": Preset(n_layer=4, n_embd=256, n_head=4, n_positions=384, batch_size=16,
                   learning_rate=2e-3, warmup_steps=30, dropout=0.0),
    # 6 × 12 × 384² ≈ 10.6M: the CPU preset for an hour's training.
    "small": Preset(n_layer=6, n_embd=384, n_head=6, n_positions=384, batch_size=16,
                    learning_rate=1e-3, warmup_steps=100, dropout=0.1),
    # GPT-2 small's shape, 12 × 12 × 768² ≈ 85M: for a GPU.
    "base": Preset(n_layer=12, n_embd=768, n_head=12, n_positions=512, batch_size=32,
                   learning_rate=3e-4, warmup_steps=300, dropout=0.1),
}


def gpt2_config(preset: Preset, vocab_size: int, *, bos_token_id: int, eos_token_id: int, pad_token_id: int):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size, n_positions=preset.n_positions, n_embd=preset.n_embd,
        n_layer=preset.n_layer, n_head=preset.n_head,
        resid_pdrop=preset.dropout, embd_pdrop=preset.dropout, attn_pdrop=preset.dropout,
        bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
        tie_word_embeddings=True,
        # The exact (erf) GELU rather than GPT-2's tanh approximation: a model trained from scratch
        # does not care which, and torch's erf kernel is the fast one on CPU. On the 2-core Xeon with
        # AMX of 2026-12-05, over 16 x 160 x 1024 activations, it takes 0.6 ms forward and 1.4 ms
        # backward in bfloat16 where the tanh kernel takes 3.8 and 15.9 (0.7 / 1.0 against 2.6 / 3.4
        # in float32). A demo training step takes 87.4% of the tanh kernel's time (`bench/train_step.py
        # --peer-activation gelu_pytorch_tanh --peer-attention eager`).
        # Checkpoints trained with a tanh GELU name it in their config and load as they are.
        activation_function="gelu",
    )
