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
        # GPT-2's own tanh GELU as one fused kernel: the same function as "gelu_new", which
        # transformers spells out in five element-wise ops. A training step takes 89.5% (demo) and
        # 85.0% (small) of the time on the 2-core CPU (bench/train_activation.py).
        activation_function="gelu_pytorch_tanh",
    )
