"""Evaluation metrics: the AdvertiseGen protocol of ChatGLM-6B, plus copy-quality measures.

ROUGE and BLEU follow ``compute_metrics`` in THUDM/ChatGLM-6B ``ptuning/main.py`` exactly, so our
numbers sit next to the published ones:

    hypothesis = list(jieba.cut(pred)); reference = list(jieba.cut(label))
    rouge-1/2/l = Rouge().get_scores(' '.join(hypothesis), ' '.join(reference))[0][k]["f"] * 100
    bleu-4 = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3) * 100

each rounded to 4 decimals per example, then averaged over examples. Two details of that code
matter when checking numbers by hand: rouge_chinese counts n-grams as *sets* (a repeated word
counts once) and adds 1e-8 to the F denominator; BLEU is over characters, not words.

ChatGLM-6B's code crashes on an empty prediction (rouge_chinese raises "Hypothesis is empty.");
like LLaMA-Factory's port of it, an empty or whitespace-only prediction or reference scores 0 on
every ROUGE. BLEU needs no guard: nltk returns 0 when no character matches.

Copy quality is what the reference-based scores miss: does the copy express the product's
attributes (coverage), does it contradict them, does it use terms the Advertising Law bans, and
is it varied (distinct-4 over characters), does it stutter (a run of 2-3 characters written twice
in a row, as "卡通卡通" or "显瘦又显瘦": 1.7% of the 5,000 AdvertiseGen references do), and is it of
a sensible length.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import jieba
from rouge_chinese import Rouge
from tqdm import tqdm

from copygen.attributes import contradictions, coverage
from copygen.compliance import Lexicon, load_lexicon, term_rate

log = logging.getLogger(__name__)
jieba.setLogLevel(logging.WARNING)  # jieba sets its own logger to DEBUG at import

ROUGE_KEYS = ("rouge-1", "rouge-2", "rouge-l")
DECIMALS = 4  # ChatGLM-6B rounds each example's score to 4 decimals before averaging

Attributes = Mapping[str, Sequence[str]]


def rouge(pred: str, ref: str) -> dict[str, float]:
    """ROUGE-1/2/L F-scores x100 on jieba words, as ChatGLM-6B computes them."""
    hypothesis = list(jieba.cut(pred))
    reference = list(jieba.cut(ref))
    if not " ".join(hypothesis).split() or not " ".join(reference).split():
        return dict.fromkeys(ROUGE_KEYS, 0.0)
    scores = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    return {key: round(scores[key]["f"] * 100, DECIMALS) for key in ROUGE_KEYS}


def bleu4(pred: str, ref: str) -> float:
    """Sentence BLEU-4 x100 on characters, NIST geometric smoothing (nltk method3)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # nltk takes 0.7 s to import

    score = sentence_bleu([list(ref)], list(pred), smoothing_function=SmoothingFunction().method3)
    return round(score * 100, DECIMALS)


def corpus_scores(preds: Sequence[str], refs: Sequence[str], *, progress: bool = False) -> dict[str, float]:
    """Plain means over examples of rouge-1, rouge-2, rouge-l and bleu-4 (the published protocol).

    About 6 ms an example (rouge_chinese's LCS table is a dict), so `progress` shows a bar.
    """
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references: they must pair up")
    if not preds:
        raise ValueError("no predictions to score")
    totals = dict.fromkeys((*ROUGE_KEYS, "bleu-4"), 0.0)
    for pred, ref in tqdm(zip(preds, refs), total=len(preds), desc="scoring", disable=not progress):
        for key, value in rouge(pred, ref).items():
            totals[key] += value
        totals["bleu-4"] += bleu4(pred, ref)
    return {key: total / len(preds) for key, total in totals.items()}


def distinct_n(texts: Sequence[str], n: int = 4) -> float:
    """Distinct character n-grams over all n-grams, pooled across the texts (0.0 when there are none).

    An n-gram never spans two texts. 1.0 means no 4-character run is ever repeated; copies that
    reuse the same phrases across products score low.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    seen: set[str] = set()
    total = 0
    for text in texts:
        grams = [text[i : i + n] for i in range(len(text) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


# The engine's stutter rule (trainer.generation.sampling: a run of 2 or 3 characters again at once or
# one character later), read back from finished copy.
STUTTER = re.compile(r"(.{2,3}).?\1", re.DOTALL)


def stutter_rate(texts: Sequence[str]) -> float:
    """Share of the texts with a run of 2-3 characters written twice, back to back or one character
    apart (0.0 for no texts)."""
    return sum(1 for t in texts if STUTTER.search(t)) / len(texts) if texts else 0.0


def mean_length(texts: Sequence[str]) -> float:
    """Mean length in characters (0.0 for no texts)."""
    return sum(len(t) for t in texts) / len(texts) if texts else 0.0


def _pairs(attributes: Attributes) -> set[str]:
    return {f"{key}#{value.strip()}" for key, values in attributes.items() for value in values if value.strip()}


class AttributeIndex:
    """Examples by their key#value pairs, to find the one most Jaccard-similar to a product.

    Ties, and products sharing no pair with any example, go to the earliest example. An inverted
    index (pair -> examples) visits only examples sharing a pair: 4,500 x 500 products take well
    under a second.
    """

    def __init__(self, attributes_list: Sequence[Attributes]):
        if not attributes_list:
            raise ValueError("an attribute index needs at least one example")
        self.sizes: list[int] = []
        self.postings: dict[str, list[int]] = {}
        for i, attributes in enumerate(attributes_list):
            pairs = _pairs(attributes)
            self.sizes.append(len(pairs))
            for pair in pairs:
                self.postings.setdefault(pair, []).append(i)

    def nearest(self, attributes: Attributes, skip: int | None = None) -> int:
        """The index of the most similar example; never `skip` (an example's own index, to find its
        nearest other)."""
        query = _pairs(attributes)
        shared: dict[int, int] = {}
        for pair in query:
            for i in self.postings.get(pair, ()):
                if i != skip:
                    shared[i] = shared.get(i, 0) + 1
        best, best_score = (1 if skip == 0 else 0), 0.0
        for i, inter in shared.items():
            score = inter / (len(query) + self.sizes[i] - inter)
            if score > best_score or (score == best_score and i < best):
                best, best_score = i, score
        return best


def retrieval_baseline(train: Sequence[tuple[Attributes, str]], eval_attrs: Sequence[Attributes]) -> list[str]:
    """For each product to evaluate, the training copy whose key#value set is most Jaccard-similar
    (AttributeIndex). The floor a trained model must beat: it copies the nearest neighbour's
    human-written copy."""
    if not train:
        raise ValueError("retrieval_baseline needs at least one training example")
    index = AttributeIndex([attributes for attributes, _ in train])
    return [train[index.nearest(attributes)][1] for attributes in eval_attrs]


def copy_quality(
    preds: Sequence[str], attributes_list: Sequence[Attributes], lexicon: Lexicon | None = None
) -> dict[str, float]:
    """Reference-free quality of generated copy for the products it was written for.

    coverage: mean share of attribute values expressed; contradiction_rate: share of copies that
    contradict their product (colour, fibre, sleeve, collar); law_term_rate: share of copies with
    a banned term; distinct_4, stutter_rate and mean_length as above; n: number of copies.
    """
    if len(preds) != len(attributes_list):
        raise ValueError(f"{len(preds)} copies but {len(attributes_list)} attribute sets: they must pair up")
    lexicon = lexicon or load_lexicon()
    n = len(preds)
    if n == 0:
        return {"n": 0, "coverage": 0.0, "contradiction_rate": 0.0, "law_term_rate": 0.0,
                "distinct_4": 0.0, "stutter_rate": 0.0, "mean_length": 0.0}
    return {
        "n": n,
        "coverage": sum(coverage(p, a) for p, a in zip(preds, attributes_list)) / n,
        "contradiction_rate": sum(1 for p, a in zip(preds, attributes_list) if contradictions(p, a)) / n,
        "law_term_rate": term_rate(preds, lexicon),
        "distinct_4": distinct_n(preds, 4),
        "stutter_rate": stutter_rate(preds),
        "mean_length": mean_length(preds),
    }
