"""Training steps as `copygen train` takes them (ours) against transformers' GPT-2 defaults, in one run.

Ours is the model `trainer.presets.gpt2_config` builds (the exact GELU) with the attention
`trainer.fit` picks for the stage (eager on CPU for short examples); the peer is the same shape
with transformers' defaults: the tanh GELU spelt out in five element-wise operations ("gelu_new")
and SDPA attention. `--peer-activation` and `--peer-attention` change one of them at a time. Both
models start from the same seed and take optimiser steps on the same batches of real training pairs
(`trainer.fit.make_batches` and `collate`) under the autocast training uses (bfloat16 on CPUs that
have it), alternating which goes first, so that a machine whose speed drifts (this 2-core one drifts
by 5-10% between runs) slows both alike. It prints the time each spent, the ratio, and the last
losses, which stay close (the models compute nearly the same function):

    .venv/bin/python bench/train_step.py --preset demo --steps 40
    .venv/bin/python bench/train_step.py --preset demo --steps 40 --peer-activation gelu_pytorch_tanh --peer-attention eager
    .venv/bin/python bench/train_step.py --preset small --steps 30
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per model")
    parser.add_argument("--data", type=Path, default=ROOT / "samples" / "advertisegen_sample.jsonl",
                        help="AdvertiseGen lines (default: the committed sample)")
    parser.add_argument("--peer-activation", default="gelu_new", help="default: transformers' GPT-2 default")
    parser.add_argument("--peer-attention", default="sdpa", choices=("sdpa", "eager"))
    args = parser.parse_args()

    import torch
    from transformers import GPT2LMHeadModel

    from trainer.data import read_pairs
    from trainer.fit import _autocast, _pick_attention, collate, make_batches
    from trainer.presets import PRESETS, gpt2_config
    from trainer.tokenizer import build_char_tokenizer
    from trainer.train import encode_pair, length_edges

    preset = PRESETS[args.preset]
    pairs, _ = read_pairs([args.data])
    tokenizer = build_char_tokenizer([p.source for p in pairs] + [p.copy for p in pairs])
    edges = length_edges([p.copy for p in pairs])
    examples = [e for e in (encode_pair(tokenizer, p, edges, preset.n_positions) for p in pairs) if e]
    batches = make_batches(examples, preset.batch_size, random.Random(0))
    batches = (batches * (args.steps // len(batches) + 1))[: args.steps]

    models = {}
    for name in ("ours", "peer"):
        torch.manual_seed(0)
        config = gpt2_config(preset, len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        if name == "peer":
            config.activation_function = args.peer_activation
        model = GPT2LMHeadModel(config).train()
        if name == "ours":
            _pick_attention(model, examples, "cpu")
        else:
            model.set_attn_implementation(args.peer_attention)
        setup = f"{config.activation_function} + {model.config._attn_implementation}"
        models[name] = (setup, model, torch.optim.AdamW(model.parameters(), lr=1e-3))

    seconds = dict.fromkeys(models, 0.0)
    losses = dict.fromkeys(models, 0.0)
    for step, batch in enumerate(batches):
        ids, labels, mask = collate(examples, batch, tokenizer.pad_token_id, preset.n_positions)
        order = list(models) if step % 2 else list(reversed(models))
        for name in order:
            _, model, optimizer = models[name]
            started = time.perf_counter()
            with _autocast("cpu"):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seconds[name] += time.perf_counter() - started
            losses[name] = loss.item()

    for name, (setup, _, _) in models.items():
        print(f"{name:>4} {setup:<26} {seconds[name]:7.2f} s for {len(batches)} steps, last loss {losses[name]:.4f}")
    print(f"{args.preset}: ours takes {seconds['ours'] / seconds['peer']:.1%} of the peer's time "
          f"({seconds['peer'] / seconds['ours']:.2f}x as many steps in the same minutes)")


if __name__ == "__main__":
    main()
