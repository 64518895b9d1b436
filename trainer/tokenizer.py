"""Character-level tokenizers for from-scratch models.

Chinese copy is written in characters, and a 5,000-pair corpus is far too small to learn useful
multi-character pieces, so one token is one character (as in BERT-Chinese and the Chinese GPT-2
models that share its vocabulary). Building the vocabulary from the corpus keeps only characters
the model will actually see: about 4,000 instead of BERT's 21,128, which makes the output layer,
and so every generated token, about five times cheaper on a small model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from copygen import prompt

UNK_FLOOR = 2  # a character seen once is more likely noise than vocabulary


def build_char_tokenizer(texts: Iterable[str], *, vocab_file: Path | None = None, min_count: int = UNK_FLOOR):
    """A fast tokenizer over single characters: the corpus's, or the single characters of vocab_file."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if vocab_file is not None:
        lines = Path(vocab_file).read_text(encoding="utf-8").splitlines()
        chars = [line for line in lines if len(line) == 1]
    else:
        counts = Counter(ch for text in texts for ch in text)
        chars = sorted((ch for ch, n in counts.items() if n >= min_count), key=lambda ch: (-counts[ch], ch))
    vocab = {token: i for i, token in enumerate(prompt.SPECIAL_TOKENS)}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))

    backend = Tokenizer(models.WordLevel(vocab, unk_token=prompt.UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(list(prompt.SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=prompt.PAD, unk_token=prompt.UNK, bos_token=prompt.BOS,
        eos_token=prompt.EOS, sep_token=prompt.SEP,
    )


def add_control_tokens(tokenizer) -> int:
    """Give a pretrained tokenizer our control codes as single tokens; returns how many were new."""
    specials = {"additional_special_tokens": [t for t in prompt.SPECIAL_TOKENS if t not in (prompt.PAD, prompt.UNK)]}
    added = tokenizer.add_special_tokens(specials, replace_additional_special_tokens=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or prompt.PAD
    return added
