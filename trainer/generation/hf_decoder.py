"""The decoder for every other causal LM: its Hugging Face forward with a dynamic cache, in
left-padded static batches (same sampling and blocking as the native GPT-2 path, no refilling).

torch is imported inside the methods (importing trainer.generation does not load it).
"""

from __future__ import annotations

import inspect


class _HFDecoder:
    """Any causal LM through its Hugging Face forward: left-padded static batches with a dynamic
    cache, finished rows dropped from the cache (no refilling)."""

    refills = False

    def __init__(self, model):
        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.max_positions = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        # transformers 5 renamed past_key_values to cache, in the call and in the output.
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def slot_bytes(self, span: int) -> int:
        config = self.model.config
        layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 1)
        hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 1)
        return 2 * layers * span * hidden * self.dtype.itemsize

    def new_cache(self, width: int, span: int):
        return None

    def prefill(self, cache, prompts: list[list[int]], slots):
        import torch  # lazy: nothing heavy at import

        unique: dict[tuple[int, ...], int] = {}
        for ids in prompts:
            unique.setdefault(tuple(ids), len(unique))
        width = max(len(p) for p in unique)
        input_ids = torch.zeros((len(unique), width), dtype=torch.long)
        attention = torch.zeros((len(unique), width), dtype=torch.long)
        for r, ids in enumerate(unique):  # left padding: every row's next token is at the end
            input_ids[r, width - len(ids):] = torch.tensor(ids)
            attention[r, width - len(ids):] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        expand = torch.tensor([unique[tuple(p)] for p in prompts], device=self.device)
        kv = out[self.cache_arg]
        kv.batch_select_indices(expand)
        return out.logits[:, -1, :].index_select(0, expand), [kv, attention.index_select(0, expand)]

    def compact(self, cache, keep, written: int):
        import torch  # lazy: nothing heavy at import

        index = torch.from_numpy(keep).to(self.device)
        cache[0].batch_select_indices(index)
        cache[1] = cache[1].index_select(0, index)
        return cache

    def rewind(self, cache, slots, written):
        """Forget the last written[i] tokens fed to slots[i] (a clause written again, batching._Clauses):
        this cache only grows, so they are masked out of attention from now on. With a clause floor a
        row may so hold up to (CLAUSE_TRIES + 1) x its budget columns, past what the batch width was
        sized for (KV_CACHE_BYTES); the native GPT-2 decoder writes over them instead."""
        attention = cache[1]
        for slot, count in zip(slots.tolist(), written.tolist()):
            attention[slot, attention.shape[1] - count:] = 0
        return cache

    def step(self, cache, tokens, positions, span: int):
        import torch  # lazy: nothing heavy at import

        kv, attention = cache
        cache[1] = attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)
        pos = torch.from_numpy(positions).to(self.device)
        out = self.model(input_ids=tokens[:, None], attention_mask=attention, position_ids=pos[:, None],
                         use_cache=True, **{self.cache_arg: kv})
        cache[0] = out[self.cache_arg]
        return out.logits[:, -1, :]
