"""The native decoder for GPT-2 models: the checkpoint's weights read straight from its safetensors
(the Hugging Face model class is never imported), a few torch calls per layer over a static
per-slot KV cache, and no per-step Python work per row.

A decoder prefills prompts into slots of the cache and runs one step for all slots; _HFDecoder
(hf_decoder.py) has the same interface. torch, safetensors and transformers are imported inside
the methods (importing trainer.generation loads none of them).
"""

from __future__ import annotations

import functools
from pathlib import Path

from trainer.checkpoint import CheckpointError
from trainer.generation.kernel import _attention_kernel

PREFILL_TOKENS = 2048  # prompt positions per prefill pass: bounded activations for a large refill


class _GPT2Decoder:
    """GPT-2 decoding straight from the checkpoint's weights over a static per-slot KV cache.

    The cache is [layers, slots, heads, positions, head_dim] for keys and for values; a slot's
    prompt fills positions 0..P-1 and each step writes one position per slot, so slots at
    different lengths decode together (the attention mask hides positions a slot has not
    written). The math is GPT2LMHeadModel's: pre-LayerNorm blocks, Conv1D weights (x @ W + b).
    """

    refills = True
    PARTS = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
             "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
             "mlp.c_proj.weight", "mlp.c_proj.bias")

    def __init__(self, config: dict, weights: dict, attention: str = "auto"):
        """config: the model's config.json; weights: GPT-2 parameter names (without the
        "transformer." prefix) to tensors, already on their device and in their dtype;
        attention: auto, sdpa, kernel or matmul (see below)."""
        import torch  # lazy: nothing heavy at import
        import torch.nn.functional as F

        self.n_layer, self.n_head, self.d = config["n_layer"], config["n_head"], config["n_embd"]
        self.head_dim = self.d // self.n_head
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        self.max_positions = config["n_positions"]
        self.wte, self.wpe = weights["wte.weight"], weights["wpe.weight"]
        self.head = weights.get("lm_head.weight", self.wte)
        self.vocab_size = self.head.shape[0]
        self.dtype, self.device = self.wte.dtype, self.wte.device
        self.ln_f = (weights["ln_f.weight"], weights["ln_f.bias"])
        self.blocks = []
        for n in range(self.n_layer):
            scale = self.head_dim ** -0.5 if config.get("scale_attn_weights", True) else 1.0
            if config.get("scale_attn_by_inverse_layer_idx", False):
                scale /= n + 1
            self.blocks.append((*(weights[f"h.{n}.{part}"] for part in self.PARTS), scale))
        name = config.get("activation_function", "gelu_new")
        if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            self.act = functools.partial(F.gelu, approximate="tanh")
        elif name == "gelu":
            self.act = F.gelu
        else:
            from transformers.activations import ACT2FN  # lazy: nothing heavy at import

            self.act = ACT2FN[name]
        # Attention over the cache, the memory-bound part of a step: on CUDA, torch's fused SDPA
        # over a cache in the model's dtype; on CPU, the fused kernel over a bfloat16 cache where
        # it can be built, else two batched matrix products over a float32 cache (2x faster
        # than SDPA with a mask there).
        explicit = attention == "kernel"  # asked for by name: wait for the kernel to be built
        if attention == "auto":
            attention = "sdpa" if self.device.type == "cuda" else "kernel"
        if attention not in ("sdpa", "kernel", "matmul"):
            raise ValueError(f"attention must be auto, sdpa, kernel or matmul, not {attention!r}")
        # A kernel still being built is not waited for (unless asked for by name): this model
        # decodes with the matmul path for its lifetime, the next process gets the kernel.
        self._kernel = _attention_kernel(self.head_dim, wait=explicit) if attention == "kernel" else None
        self.attention = "matmul" if attention == "kernel" and self._kernel is None else attention
        self.cache_dtype = {"sdpa": self.dtype, "kernel": torch.bfloat16, "matmul": torch.float32}[self.attention]
        self._buffer = None

    @staticmethod
    def supports(config: dict) -> bool:
        return (config.get("model_type") == "gpt2" and not config.get("add_cross_attention")
                and "GPT2LMHeadModel" in (config.get("architectures") or ["GPT2LMHeadModel"])
                and config["n_embd"] % config["n_head"] == 0)

    @classmethod
    def from_model(cls, model, attention: str = "auto") -> _GPT2Decoder:
        weights = {name.removeprefix("transformer."): tensor for name, tensor in model.state_dict().items()}
        return cls(model.config.to_dict(), weights, attention)

    @classmethod
    def from_checkpoint(cls, path: Path, config: dict, device: str, dtype, attention: str = "auto"):
        """(decoder, tokenizer) from a checkpoint's safetensors, without the Hugging Face model."""
        from safetensors.torch import load_file  # lazy: nothing heavy at import
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
            weights = {}
            for file in sorted(path.glob("*.safetensors")):
                for name, tensor in load_file(str(file)).items():
                    weights[name.removeprefix("transformer.")] = tensor.to(device=device, dtype=dtype)
            if "lm_head.weight" not in weights and config.get("tie_word_embeddings") is False:
                raise KeyError("lm_head.weight")
            decoder = cls(config, weights, attention)
            return decoder, tokenizer
        except Exception as exc:  # noqa: BLE001  (safetensors raises its own types; any failure is one line)
            text = str(exc).strip()
            first_line = text.splitlines()[0] if text else type(exc).__name__
            if isinstance(exc, KeyError):
                first_line = f"weight {first_line} is missing"
            raise CheckpointError(f"{path}: cannot load the model ({first_line})") from None

    def slot_bytes(self, span: int) -> int:
        return 2 * self.n_layer * span * self.d * self.cache_dtype.itemsize

    def new_cache(self, width: int, span: int):
        """Views of width slots x span positions into a buffer kept between calls (allocating and
        zeroing a fresh cache per call would cost more than a chunk's prefill)."""
        import torch  # lazy: nothing heavy at import

        have = self._buffer[0].shape if self._buffer is not None else (0, 0, 0, 0, 0)
        if have[1] < width or have[3] < span:
            shape = (self.n_layer, max(width, have[1]), self.n_head, max(span, have[3]), self.head_dim)
            self._buffer = None  # free the old one first
            self._buffer = (torch.zeros(shape, dtype=self.cache_dtype, device=self.device),
                            torch.zeros(shape, dtype=self.cache_dtype, device=self.device))
        return tuple(b[:, :width] for b in self._buffer)

    def rewind(self, cache, slots, written):
        """A clause written again (batching._Clauses): nothing to forget, its tokens' positions are
        written over and those past a slot's position are masked."""
        return cache

    def compact(self, cache, keep, written: int):
        """The cache of the slots in keep (ascending), moved to the front: views, no new cache.
        Only the first `written` positions hold anything yet; only they are copied."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        moved = np.flatnonzero(keep != np.arange(len(keep)))  # keep[j] >= j: sources are never overwritten
        if len(moved):
            src = torch.from_numpy(keep[moved]).to(self.device)
            dst = torch.from_numpy(moved).to(self.device)
            for c in cache:
                c[:, :, :, :written].index_copy_(1, dst, c[:, :, :, :written].index_select(1, src))
        return tuple(c[:, : len(keep)] for c in cache)

    def _ln(self, x, w, b):
        import torch.nn.functional as F  # lazy: nothing heavy at import

        return F.layer_norm(x, (self.d,), w, b, self.eps)

    def prefill(self, cache, prompts: list[list[int]], slots):
        """Run each distinct prompt once, copy its keys and values into its rows' slots; the
        logits of each row's next token. At most PREFILL_TOKENS prompt positions per forward
        pass, which bounds the activations a large refill allocates."""
        import torch  # lazy: nothing heavy at import

        groups, start, seen, longest = [], 0, set(), 0
        for end, ids in enumerate(prompts):
            if tuple(ids) not in seen and seen and (len(seen) + 1) * max(longest, len(ids)) > PREFILL_TOKENS:
                groups.append((start, end))
                start, seen, longest = end, set(), 0
            seen.add(tuple(ids))
            longest = max(longest, len(ids))
        groups.append((start, len(prompts)))
        logits = [self._prefill(cache, prompts[a:b], slots[a:b]) for a, b in groups]
        return (logits[0] if len(logits) == 1 else torch.cat(logits)), cache

    def _prefill(self, cache, prompts: list[list[int]], slots):
        import torch  # lazy: nothing heavy at import
        import torch.nn.functional as F

        unique: dict[tuple[int, ...], int] = {}
        for ids in prompts:
            unique.setdefault(tuple(ids), len(unique))
        width = max(len(p) for p in unique)
        ids = torch.full((len(unique), width), 0, dtype=torch.long)
        for n, p in enumerate(unique):  # right padding: a prompt's positions start at 0
            ids[n, : len(p)] = torch.tensor(p)
        ids = ids.to(self.device)
        lengths = torch.tensor([len(p) for p in unique], device=self.device)
        source = torch.tensor([unique[tuple(p)] for p in prompts], device=self.device)
        slots = torch.from_numpy(slots).to(self.device)
        n, h, hd = len(unique), self.n_head, self.head_dim
        x = F.embedding(ids, self.wte) + self.wpe[:width]
        keys, values = cache
        for layer, (w1, b1, wa, ba, wp, bp, w2, b2, wf, bf, wo, bo, scale) in enumerate(self.blocks):
            qkv = torch.addmm(ba, self._ln(x, w1, b1).view(-1, self.d), wa)
            q, k, v = qkv.view(n, width, 3, h, hd).permute(2, 0, 3, 1, 4).unbind(0)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
            x = x + torch.addmm(bp, a.transpose(1, 2).reshape(-1, self.d), wp).view(n, width, self.d)
            x = x + torch.addmm(bo, self.act(torch.addmm(bf, self._ln(x, w2, b2).view(-1, self.d), wf)),
                                wo).view(n, width, self.d)
            keys[layer].narrow(2, 0, width).index_copy_(0, slots, k.index_select(0, source).to(keys.dtype))
            values[layer].narrow(2, 0, width).index_copy_(0, slots, v.index_select(0, source).to(keys.dtype))
        last = x[torch.arange(n, device=self.device), lengths - 1]
        return F.linear(self._ln(last, *self.ln_f), self.head).index_select(0, source)

    def step(self, cache, tokens, positions, span: int):
        """Logits of every slot's next token after writing `tokens` at `positions`."""
        import torch  # lazy: nothing heavy at import
        import torch.nn.functional as F

        width, h, hd = tokens.shape[0], self.n_head, self.head_dim
        pos = torch.from_numpy(positions).to(self.device)
        slot = torch.arange(width, device=self.device)
        hidden = torch.arange(span, device=self.device)[None, :] > pos[:, None]  # not yet written
        x = F.embedding(tokens, self.wte) + F.embedding(pos, self.wpe)
        keys, values = cache
        if self.attention == "sdpa":
            mask = ~hidden[:, None, None, :]
        else:
            bias = torch.zeros((width, 1, span), device=self.device).masked_fill_(hidden[:, None, :], float("-inf"))
        for layer, (w1, b1, wa, ba, wp, bp, w2, b2, wf, bf, wo, bo, scale) in enumerate(self.blocks):
            q, k, v = torch.addmm(ba, self._ln(x, w1, b1), wa).view(width, 3, h, hd).unbind(1)
            keys[layer][slot, :, pos] = k.to(keys.dtype)
            values[layer][slot, :, pos] = v.to(keys.dtype)
            if self.attention == "kernel":  # reads the layer's cache in place, positions < span
                a = self._kernel((q.float() * scale).contiguous(), keys[layer], values[layer], bias)
            elif self.attention == "sdpa":
                a = F.scaled_dot_product_attention(q[:, :, None], keys[layer][:, :, :span],
                                                   values[layer][:, :, :span], attn_mask=mask, scale=scale)
            else:  # batched matrix products over (slot, head) pairs: the cache is read in place
                seen_k, seen_v = keys[layer][:, :, :span], values[layer][:, :, :span]
                scores = torch.bmm(q.float().reshape(width * h, 1, hd),
                                   seen_k.reshape(width * h, span, hd).transpose(1, 2))
                scores = scores.view(width, h, span).mul_(scale).add_(bias).softmax(-1)
                a = torch.bmm(scores.view(width * h, 1, span), seen_v.reshape(width * h, span, hd))
            x = x + torch.addmm(bp, a.reshape(width, self.d).to(x.dtype), wp)
            x = x + torch.addmm(bo, self.act(torch.addmm(bf, self._ln(x, w2, b2), wf)), wo)
        return F.linear(self._ln(x, *self.ln_f), self.head)
