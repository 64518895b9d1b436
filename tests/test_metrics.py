"""The AdvertiseGen metrics, checked against values worked out by hand, and the copy-quality report."""

from __future__ import annotations

import math
import random

import jieba
import pytest

from copygen.compliance import Lexicon
from trainer.metrics import (
    bleu4,
    copy_quality,
    corpus_scores,
    distinct_n,
    mean_length,
    retrieval_baseline,
    rouge,
    stutter_rate,
)


def test_rouge_scores_jieba_words_with_the_f_measure_times_100():
    # jieba: 红色/连衣裙/很/好看 against 红色/连衣裙/很漂亮 (checked first: the sums rest on it).
    assert list(jieba.cut("红色连衣裙很好看")) == ["红色", "连衣裙", "很", "好看"]
    assert list(jieba.cut("红色连衣裙很漂亮")) == ["红色", "连衣裙", "很漂亮"]
    scores = rouge("红色连衣裙很好看", "红色连衣裙很漂亮")
    # ROUGE-1: 4 hypothesis words, 3 reference words, 2 shared (红色, 连衣裙).
    #   P = 2/4, R = 2/3, F = 2PR/(P+R) = (2/3)/(7/6) = 4/7 = 0.571428...
    assert scores["rouge-1"] == pytest.approx(57.1429, abs=1e-4)
    # ROUGE-2: bigrams {红色 连衣裙, 连衣裙 很, 很 好看} vs {红色 连衣裙, 连衣裙 很漂亮}: 1 shared.
    #   P = 1/3, R = 1/2, F = (1/3)/(5/6) = 0.4
    assert scores["rouge-2"] == pytest.approx(40.0, abs=1e-4)
    # ROUGE-L: longest common subsequence 红色 连衣裙 = 2 words; P = 2/4, R = 2/3, as ROUGE-1.
    assert scores["rouge-l"] == pytest.approx(57.1429, abs=1e-4)


def test_rouge_counts_a_repeated_word_once_as_rouge_chinese_does():
    # 红色/红色 against 红色. rouge_chinese keeps n-grams in sets: ROUGE-1 sees {红色} on both
    # sides, so P = R = 1 and F = 100 (a count-based ROUGE would say P = 1/2).
    # ROUGE-2: the reference has no bigram, so R = 0 and F = 0.
    # ROUGE-L uses word lists: LCS = 1, P = 1/2, R = 1/1, F = 1/(3/2) = 2/3.
    assert rouge("红色红色", "红色") == pytest.approx(
        {"rouge-1": 100.0, "rouge-2": 0.0, "rouge-l": 66.6667}, abs=1e-4)


@pytest.mark.parametrize("pred, ref", [("", "红色连衣裙"), ("   ", "红色连衣裙"), ("红色连衣裙", "")])
def test_rouge_of_an_empty_prediction_or_reference_is_zero_instead_of_an_error(pred, ref):
    assert rouge(pred, ref) == {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}


def test_bleu4_without_a_zero_precision_is_the_plain_geometric_mean():
    # Characters 今天天气很好 against 今天天气不错, both 6 long, so no brevity penalty.
    # 1-grams: 今 天 天 气 match (天 twice in both) -> 4/6; 2-grams: 今天 天天 天气 -> 3/5;
    # 3-grams: 今天天 天天气 -> 2/4; 4-grams: 今天天气 -> 1/3.
    # BLEU = (4/6 * 3/5 * 2/4 * 1/3) ** (1/4) = (1/15) ** 0.25 = 0.508133
    assert bleu4("今天天气很好", "今天天气不错") == pytest.approx(round((1 / 15) ** 0.25 * 100, 4))
    assert bleu4("今天天气很好", "今天天气不错") == pytest.approx(50.8133, abs=1e-4)


def test_bleu4_smooths_zero_precisions_with_nist_geometric_halving():
    # 红色连衣裙 against 红色半身裙: 1-grams 红 色 裙 -> 3/5; 2-grams 红色 -> 1/4;
    # 3-grams 0/3 and 4-grams 0/2. method3 replaces the k-th zero precision by 1/(2^k * total):
    # 1/(2*3) = 1/6 and 1/(4*2) = 1/8.  BLEU = (3/5 * 1/4 * 1/6 * 1/8) ** 0.25 = (1/320) ** 0.25
    assert bleu4("红色连衣裙", "红色半身裙") == pytest.approx(23.6435, abs=1e-4)


def test_bleu4_applies_the_brevity_penalty_to_a_short_prediction():
    # 红色 against 红色连衣裙: c = 2, r = 5, BP = exp(1 - 5/2).
    # 1-gram 2/2, 2-gram 1/1, 3- and 4-grams have no candidate n-gram: nltk counts 0/1, smoothed to
    # 1/2 and 1/4.  BLEU = exp(-1.5) * (1 * 1 * 1/2 * 1/4) ** 0.25
    assert bleu4("红色", "红色连衣裙") == pytest.approx(round(math.exp(-1.5) * (1 / 8) ** 0.25 * 100, 4))


def test_bleu4_is_100_for_an_exact_match_and_0_for_an_empty_prediction():
    assert bleu4("红色连衣裙", "红色连衣裙") == pytest.approx(100.0)
    assert bleu4("", "红色连衣裙") == 0.0


def test_corpus_scores_are_plain_means_over_examples():
    scores = corpus_scores(["红色连衣裙", ""], ["红色连衣裙", "白色衬衫"])
    # One perfect example (100 everywhere) and one empty prediction (0 everywhere).
    assert scores == pytest.approx({"rouge-1": 50.0, "rouge-2": 50.0, "rouge-l": 50.0, "bleu-4": 50.0},
                                   abs=1e-3)


def test_corpus_scores_refuses_unpaired_or_empty_input():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        corpus_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions"):
        corpus_scores([], [])


def test_distinct_n_pools_character_ngrams_across_texts():
    # abcab: ab bc ca ab; abc: ab bc -> 6 bigrams, 3 distinct (ab, bc, ca).
    assert distinct_n(["abcab", "abc"], n=2) == pytest.approx(3 / 6)
    # 红色红色 has 3 bigrams: 红色 色红 红色 -> 2 distinct.
    assert distinct_n(["红色红色"], n=2) == pytest.approx(2 / 3)
    # distinct-4 (the default): 红色连衣裙 has 红色连衣 色连衣裙; twice the same text -> 2 of 4.
    assert distinct_n(["红色连衣裙", "红色连衣裙"]) == pytest.approx(0.5)


def test_stutter_rate_counts_copies_that_write_a_short_run_twice():
    assert stutter_rate(["卡通卡通印花", "显瘦又显瘦", "面料，面料柔软"]) == 1.0  # back to back, one apart
    assert stutter_rate(["红色连衣裙，简约大方", "修身显瘦的版型，显瘦"]) == 0.0  # apart by more: fine
    assert stutter_rate(["卡通卡通", "简约大方", "红红火火", "好好"]) == pytest.approx(1 / 4)  # runs of 2+
    assert stutter_rate([]) == 0.0


def test_distinct_n_is_zero_when_no_text_is_long_enough_and_never_spans_two_texts():
    assert distinct_n(["红色", "裙"], n=4) == 0.0
    assert distinct_n([], n=4) == 0.0
    # "ab" + "cd" joined would give bc; kept apart there are only ab and cd.
    assert distinct_n(["ab", "cd"], n=2) == pytest.approx(1.0)


def test_mean_length_counts_characters():
    assert mean_length(["红色", "红色连衣"]) == 3.0
    assert mean_length([]) == 0.0


TRAIN = [
    ({"类型": ["裙"], "颜色": ["红色"]}, "copy A"),
    ({"类型": ["裙"], "颜色": ["红色"], "材质": ["棉"]}, "copy B"),
    ({"类型": ["裤"]}, "copy C"),
    ({"类型": ["裤"]}, "copy D"),
]


def test_retrieval_baseline_returns_the_copy_of_the_most_jaccard_similar_product():
    picked = retrieval_baseline(TRAIN, [
        {"类型": ["裙"], "颜色": ["红色"], "材质": ["棉"]},  # B: 3/3, A: 2/3
        {"类型": ["裙"]},  # A: 1/2, B: 1/3
        {"类型": ["裙"], "颜色": ["红色"], "材质": ["棉", "麻"]},  # B: 3/4, A: 2/4
    ])
    assert picked == ["copy B", "copy A", "copy B"]


def test_retrieval_baseline_breaks_ties_and_no_overlap_towards_the_first_training_example():
    assert retrieval_baseline(TRAIN, [{"类型": ["裤"]}]) == ["copy C"]  # C and D both 1/1
    assert retrieval_baseline(TRAIN, [{"图案": ["格子"]}, {}]) == ["copy A", "copy A"]
    with pytest.raises(ValueError, match="at least one training example"):
        retrieval_baseline([], [{"类型": ["裤"]}])


def test_retrieval_baseline_agrees_with_a_brute_force_search():
    rng = random.Random(7)
    vocab = [("颜色", v) for v in "红白黑蓝"] + [("材质", v) for v in "棉麻丝"] + [("图案", v) for v in "格条花"]

    def product():
        attrs: dict[str, list[str]] = {}
        for key, value in rng.sample(vocab, rng.randint(1, 4)):
            attrs.setdefault(key, []).append(value)
        return attrs

    def pairs(attrs):
        return {f"{k}#{v}" for k, vs in attrs.items() for v in vs}

    train = [(product(), f"copy {i}") for i in range(150)]
    queries = [product() for _ in range(40)]
    expected = []
    for q in queries:
        scores = [len(pairs(q) & pairs(a)) / len(pairs(q) | pairs(a)) for a, _ in train]
        expected.append(train[scores.index(max(scores))][1])  # index() = first of the best
    assert retrieval_baseline(train, queries) == expected


def test_copy_quality_reports_coverage_contradictions_law_terms_diversity_and_length():
    lexicon = Lexicon(version="t", terms=("最好",))
    preds = ["红色连衣裙，最好的选择", "白色半身裙"]
    attrs = [{"类型": ["裙"], "颜色": ["红色"]}, {"颜色": ["黑色"]}]
    report = copy_quality(preds, attrs, lexicon)
    assert report["n"] == 2
    assert report["coverage"] == pytest.approx(0.5)  # 红色 expressed; 黑色 not
    assert report["contradiction_rate"] == pytest.approx(0.5)  # the second names 白色, not 黑色
    assert report["law_term_rate"] == pytest.approx(0.5)  # 最好 in the first
    assert report["distinct_4"] == pytest.approx(distinct_n(preds, 4))
    assert report["mean_length"] == pytest.approx((11 + 5) / 2)


def test_copy_quality_refuses_copies_and_attributes_that_do_not_pair_up():
    with pytest.raises(ValueError, match="1 copies but 2 attribute sets"):
        copy_quality(["a"], [{}, {}], Lexicon(version="t", terms=("最好",)))
