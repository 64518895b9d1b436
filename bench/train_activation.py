"""Training steps with the fused tanh GELU (ours) against transformers' GPT-2 default, in one run.

`trainer.presets.gpt2_config` builds GPT-2 with activation_function="gelu_pytorch_tanh": GPT-2's own
tanh approximation of GELU as one kernel, where the default "gelu_new" spells the same function out
in five element-wise operations. Two models with the same seed, one of each, take optimiser steps
on the same batches of real training pairs (`trainer.fit.make_batches` and `collate`), alternating
which goes first, so that a machine whose speed drifts (this 2-core one drifts by 5-10% between
runs) slows both alike. It prints the time each spent and the ratio, and the last losses, which stay
close (the same function; the fused kernel rounds differently, and training carries that along):

    .venv/bin/python bench/train_activation.py --preset demo --steps 40
    .venv/bin/python bench/train_activation.py --preset small --steps 40
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEER = "gelu_new"  # transformers' default for GPT-2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per model")
    parser.add_argument("--data", type=Path, default=ROOT / "samples" / "advertisegen_sample.jsonl",
                        help="AdvertiseGen lines (default: the committed sample)")
    parser.add_argument("--tokenizer", type=Path, default=ROOT / "models" / "demo",
                        help="a checkpoint whose tokenizer encodes the pairs (default: models/demo)")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from trainer.data import read_pairs
    from trainer.fit import collate, make_batches
    from trainer.presets import PRESETS, gpt2_config
    from trainer.train import encode_pair, length_edges

    preset = PRESETS[args.preset]
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    pairs, _ = read_pairs([args.data])
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
            config.activation_function = PEER
        model = GPT2LMHeadModel(config).train()
        models[name] = (config.activation_function, model, torch.optim.AdamW(model.parameters(), lr=1e-3))

    seconds = dict.fromkeys(models, 0.0)
    losses = dict.fromkeys(models, 0.0)
    for step, batch in enumerate(batches):
        ids, labels, mask = collate(examples, batch, tokenizer.pad_token_id, preset.n_positions)
        order = list(models) if step % 2 else list(reversed(models))
        for name in order:
            _, model, optimizer = models[name]
            started = time.perf_counter()
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seconds[name] += time.perf_counter() - started
            losses[name] = loss.item()

    for name, (activation, _, _) in models.items():
        print(f"{name:>4} {activation:<18} {seconds[name]:7.2f} s for {len(batches)} steps, last loss {losses[name]:.4f}")
    print(f"{args.preset}: ours takes {seconds['ours'] / seconds['peer']:.1%} of the peer's time "
          f"({seconds['peer'] / seconds['ours']:.2f}x as many steps in the same minutes)")


if __name__ == "__main__":
    main()
