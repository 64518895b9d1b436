"""The model's own mean token log-probability of copy it wrote earlier, measured again by teacher
forcing. The selection score's fluency term is exp(this); the worker does not store it with a
variant, so `copygen tune-score` measures it again from the variant's checkpoint.

The quantity is the engine's: log p of each copy token and of the end token under the model's raw
distribution (the network's, mixed with the checkpoint's n-gram model where it has one), after the
prompt (copygen.prompt.render_prompt, opening included), averaged per token.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from copygen import prompt
from trainer.checkpoint import load_model_and_tokenizer
from trainer.generation.generator import load_mixture
from trainer.ngram import copy_of, key_of, mix

BATCH = 16  # sequences per forward pass; copy is a few hundred tokens at most


def mean_logprobs(checkpoint: str | os.PathLike, items: Sequence[tuple[str, str]], *,
                  batch_size: int = BATCH, use_ngram: bool = True) -> list[float]:
    """For each (prompt, continuation): the continuation's mean log p per token, end token included
    (use_ngram=False: under the network alone, e.g. to judge copy with another model)."""
    from pathlib import Path

    import numpy as np  # lazy: nothing heavy at import
    import torch

    model, tokenizer, manifest = load_model_and_tokenizer(checkpoint)
    mixture = load_mixture(Path(checkpoint), manifest) if use_ngram else None
    eos = tokenizer.convert_tokens_to_ids(prompt.EOS)
    sep = tokenizer.convert_tokens_to_ids(prompt.SEP)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    limit = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    found: list[float] = []
    for start in range(0, len(items), batch_size):
        rows, firsts, copies = [], [], []
        for text_prompt, continuation in items[start:start + batch_size]:
            head = tokenizer.encode(text_prompt, add_special_tokens=False)
            body = tokenizer.encode(continuation, add_special_tokens=False) + [eos]
            ids = (head + body)[-limit:]  # a prompt too long loses its start, as the engine's would
            rows.append(ids)
            firsts.append(max(1, len(ids) - len(body)))  # the first scored position
            copies.append((copy_of(head, sep), body))  # what the n-gram model reads: the copy after the separator
        width = max(len(r) for r in rows)
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
        p = torch.softmax(logits[:, :-1], dim=-1).gather(2, input_ids[:, 1:, None]).squeeze(2).double().numpy()
        for i, row in enumerate(rows):
            scored = p[i, firsts[i] - 1:len(row) - 1]  # token t is predicted at position t - 1
            if mixture is not None:
                models, weight = mixture
                opening, body = copies[i]
                [counted] = models.token_probs([opening + body], [key_of(items[start + i][0])])
                scored = mix(scored, counted[len(opening):][-len(scored):], weight)
            found.append(float(np.log(np.maximum(scored, 1e-30)).mean()))
    return found
