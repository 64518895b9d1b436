"""copygen's generation engine: many prompts, k sampled variants each, batched on one device.

This is the code the worker runs and the benchmark measures. Per batch it

1. groups rows by prompt length (length-sorted batches waste little on left padding),
2. runs the prompt once per product and copies its KV cache to the product's k variants,
3. samples all rows together with a KV cache, with temperature and nucleus (top-p) sampling,
4. drops rows from the batch as they finish, so short copy stops paying for long copy,
5. blocks banned phrases (Advertising Law terms) at decode time: when the last tokens spell the
   beginning of a banned phrase, the token that would complete it gets probability zero.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from copygen import prompt

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = {"short": 64, "medium": 200, "long": 300}


@dataclass(frozen=True)
class Request:
    source: str
    variants: int = 1
    length: str = "medium"
    style: str = "ad"
    opening: str = ""


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class Generator:
    """One model on one device, loaded once; generate() is safe to call many times."""

    def __init__(self, model, tokenizer, manifest: dict, device: str, batch_size: int = 48):
        self.model = model
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.device = device
        self.batch_size = batch_size
        self.model_version = manifest["name"]
        self.max_positions = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
        self.eos_id = tokenizer.convert_tokens_to_ids(prompt.EOS)
        self.pad_id = tokenizer.convert_tokens_to_ids(prompt.PAD)
        if self.pad_id is None or self.pad_id == tokenizer.unk_token_id:
            self.pad_id = tokenizer.pad_token_id
        never = set(tokenizer.all_special_ids) - {self.eos_id}
        self._never_ids = sorted(never)
        # transformers 5 renamed past_key_values to cache, in the call and in the output.
        import inspect

        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    @classmethod
    def load(cls, checkpoint_dir: str | os.PathLike, device: str = "auto", batch_size: int = 48) -> Generator:
        import torch

        from trainer.checkpoint import load_model_and_tokenizer

        device = pick_device(device)
        dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else None
        model, tokenizer, manifest = load_model_and_tokenizer(Path(checkpoint_dir), device=device, dtype=dtype)
        log.info("loaded checkpoint %s (%s) on %s", checkpoint_dir, manifest["name"], device)
        return cls(model, tokenizer, manifest, device, batch_size)

    # -- prompts -------------------------------------------------------------------------------

    def prompt_ids(self, request: Request, max_new_tokens: int) -> list[int]:
        """Token ids of the request's prompt; the source is cut, never the codes or the opening."""
        head = self.tokenizer.encode(
            prompt.render_prompt("", request.length, request.style, ""), add_special_tokens=False)
        sep_at = len(head) - 1  # the template ends with [SEP] when source and opening are empty
        source = self.tokenizer.encode(request.source, add_special_tokens=False)
        opening = self.tokenizer.encode(request.opening, add_special_tokens=False) if request.opening else []
        room = self.max_positions - max_new_tokens - len(head) - len(opening)
        if room < 0:
            raise ValueError(f"prompt too long: opening of {len(opening)} tokens leaves no room to generate")
        return head[:sep_at] + source[:room] + head[sep_at:] + opening

    def _banned_table(self, phrases: Iterable[str]) -> dict[tuple[int, ...], set[int]]:
        """Maps the token prefix of each banned phrase to the tokens that would complete it."""
        table: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for phrase in phrases:
            ids = self.tokenizer.encode(phrase, add_special_tokens=False)
            if ids and self.tokenizer.unk_token_id not in ids:
                table[tuple(ids[:-1])].add(ids[-1])
        return dict(table)

    # -- generation ----------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], *, temperature: float = 0.95, top_p: float = 0.7,
                 seed: int | None = None, max_new_tokens: int | None = None, banned: Iterable[str] = (),
                 greedy: bool = False) -> list[list[str]]:
        """Request i -> its `variants` texts, in order; each text starts with the request's opening."""
        import torch

        banned_table = self._banned_table(banned)
        rows: list[tuple[int, int, list[int], int]] = []  # (request, variant, prompt ids, budget)
        for i, request in enumerate(requests):
            budget = max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(request.length, 200)
            budget = min(budget, self.max_positions // 2)
            ids = self.prompt_ids(request, budget)
            rows.extend((i, v, ids, budget) for v in range(request.variants))
        rows.sort(key=lambda row: (len(row[2]), row[0], row[1]))

        texts: list[list[str]] = [[""] * r.variants for r in requests]
        rng = torch.Generator(device=self.device)
        rng.manual_seed(seed if seed is not None else torch.seed())
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start:start + self.batch_size]
            outputs = self._generate_batch(batch, temperature, top_p, rng, banned_table, greedy)
            for (i, v, _, _), ids in zip(batch, outputs):
                opening = requests[i].opening
                texts[i][v] = opening + self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return texts

    def _generate_batch(self, batch, temperature, top_p, rng, banned_table, greedy) -> list[list[int]]:
        import torch

        model, device = self.model, self.device
        # Rows of one product share a prompt: run each distinct prompt once, then copy its cache.
        unique: dict[tuple[int, ...], int] = {}
        for _, _, ids, _ in batch:
            unique.setdefault(tuple(ids), len(unique))
        prompts = list(unique)
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for r, ids in enumerate(prompts):  # left padding: every row's next token is at the end
            input_ids[r, width - len(ids):] = torch.tensor(ids)
            attention[r, width - len(ids):] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)

        with torch.inference_mode():
            out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
            cache = out[self._cache_arg]
            expand = torch.tensor([unique[tuple(ids)] for _, _, ids, _ in batch], device=device)
            cache.batch_select_indices(expand)
            logits = out.logits[:, -1, :].index_select(0, expand)
            attention = attention.index_select(0, expand)
            next_pos = positions[:, -1].index_select(0, expand) + 1

            history = [list(ids[-4:]) for _, _, ids, _ in batch]  # tail, for banned-phrase lookups
            generated: list[list[int]] = [[] for _ in batch]
            alive = list(range(len(batch)))  # batch rows still generating, in cache order
            budget = max(b for _, _, _, b in batch)
            for step in range(budget):
                token = self._next_tokens(logits, [history[r] for r in alive], banned_table,
                                          temperature, top_p, rng, greedy)
                token_list = token.tolist()
                keep = []
                for slot, r in enumerate(alive):
                    t = token_list[slot]
                    if t == self.eos_id or len(generated[r]) >= batch[r][3]:
                        continue
                    generated[r].append(t)
                    history[r] = (history[r] + [t])[-4:]
                    keep.append(slot)
                if not keep or step == budget - 1:
                    break
                if len(keep) < len(alive):
                    index = torch.tensor(keep, device=device)
                    cache.batch_select_indices(index)
                    token, attention, next_pos = token[index], attention[index], next_pos[index]
                    alive = [alive[s] for s in keep]
                attention = torch.cat([attention, attention.new_ones((len(alive), 1))], dim=1)
                out = model(input_ids=token[:, None], attention_mask=attention,
                            position_ids=next_pos[:, None], use_cache=True, **{self._cache_arg: cache})
                cache = out[self._cache_arg]
                logits = out.logits[:, -1, :]
                next_pos = next_pos + 1
        return generated

    def _next_tokens(self, logits, histories, banned_table, temperature, top_p, rng, greedy):
        import torch

        logits = logits.float()
        logits[:, self._never_ids] = float("-inf")
        if banned_table:
            for row, tail in enumerate(histories):
                for k in range(0, min(len(tail), 4) + 1):
                    blocked = banned_table.get(tuple(tail[len(tail) - k:]) if k else ())
                    if blocked:
                        logits[row, list(blocked)] = float("-inf")
        if greedy:
            return logits.argmax(-1)
        probs = torch.softmax(logits / max(temperature, 1e-5), dim=-1)
        if top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            cumulative = sorted_probs.cumsum(-1)
            sorted_probs[(cumulative - sorted_probs) > top_p] = 0.0  # keep the smallest nucleus >= top_p
            probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
        return torch.multinomial(probs, 1, generator=rng).squeeze(-1)
