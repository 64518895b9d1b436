"""The n-gram model of the training copy (trainer.ngram), and the engine decoding from its mixture
with the network."""

from __future__ import annotations

import json
import math
import random
import shutil
from collections import defaultdict

import numpy as np
import pytest
import torch

from trainer import ngram
from trainer.checkpoint import CheckpointError
from trainer.generation import Generator, Request
from trainer.ngram import NgramLM, NgramSet, choose_weight
from trainer.rescore import mean_logprobs
from trainer.testing import tiny_checkpoint, tiny_pairs
from trainer.train import TrainError, TrainOptions, train

START = 1  # the separator: what a context holds before the copy's first token


def kneser_ney_by_hand(sequences, order, vocab_size):
    """Interpolated Kneser-Ney written out with dictionaries of counts, as the textbook has it: the
    highest order counts n-grams, each lower order counts the distinct tokens seen before an n-gram,
    every order discounts by n1 / (n1 + 2 n2) of its own counts and hands what it took to the order below."""
    grams = defaultdict(int)
    left = [defaultdict(set) for _ in range(order + 1)]
    for seq in sequences:
        padded = [START] * (order - 1) + list(seq)
        for i in range(order - 1, len(padded)):
            grams[tuple(padded[i - order + 1:i + 1])] += 1
            for k in range(1, order):
                left[k][tuple(padded[i - k + 1:i + 1])].add(padded[i - k])
    counts = {order: dict(grams)}
    for k in range(1, order):
        counts[k] = {g: len(s) for g, s in left[k].items()}
    discount, total, types = {}, {}, {}
    for k, table in counts.items():
        n1 = sum(1 for c in table.values() if c == 1)
        n2 = sum(1 for c in table.values() if c == 2)
        discount[k] = min(0.95, max(0.05, n1 / (n1 + 2 * n2))) if n1 + n2 else 0.5
        total[k], types[k] = defaultdict(int), defaultdict(int)
        for g, c in table.items():
            total[k][g[:-1]] += c
            types[k][g[:-1]] += 1

    def p(context, token):
        value = 1 / vocab_size
        for k in range(1, order + 1):
            h = tuple(context[len(context) - (k - 1):]) if k > 1 else ()
            if not total[k].get(h):
                continue
            d = discount[k]
            value = max(counts[k].get(h + (token,), 0) - d, 0) / total[k][h] + d * types[k][h] / total[k][h] * value
        return value

    return p


def random_copy(rng: random.Random, n: int, vocab: int = 12) -> list[list[int]]:
    """Copy-like sequences over a small alphabet, with phrases that recur: tokens 2..vocab-1, end token 0."""
    phrases = [[rng.randrange(2, vocab) for _ in range(rng.randrange(2, 5))] for _ in range(6)]
    return [[t for _ in range(rng.randrange(2, 6)) for t in rng.choice(phrases)] + [0] for _ in range(n)]


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_kneser_ney_probabilities_match_the_textbook_counts(order):
    rng = random.Random(order)
    sequences = random_copy(rng, 40)
    lm = NgramLM.build(sequences, vocab_size=12, start_id=START, order=order)
    by_hand = kneser_ney_by_hand(sequences, order, 12)
    contexts = [[rng.randrange(0, 12) for _ in range(order - 1)] for _ in range(30)]
    contexts += [list(seq[:order - 1]) for seq in sequences[:10] if len(seq) >= order - 1]  # seen ones
    contexts += [[START] * (order - 1)]  # a copy's first token
    got = lm.distribution(np.array(contexts, dtype=np.int64).reshape(len(contexts), order - 1))
    expected = [[by_hand(c, t) for t in range(12)] for c in contexts]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_every_next_token_distribution_sums_to_one_whether_its_context_was_seen_or_not():
    rng = random.Random(7)
    lm = NgramLM.build(random_copy(rng, 60), vocab_size=12, start_id=START)
    contexts = np.array([[rng.randrange(0, 12) for _ in range(4)] for _ in range(200)])
    sums = lm.distribution(contexts).sum(axis=1)
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    assert lm.distribution(contexts).min() > 0  # never zero: an unseen token keeps a share of the uniform


def test_token_probs_are_the_distributions_at_each_position_of_each_sequence(monkeypatch):
    monkeypatch.setattr(ngram, "CHUNK", 7)  # positions scored in chunks that cut across sequences
    rng = random.Random(3)
    sequences = random_copy(rng, 30)
    lm = NgramLM.build(sequences, vocab_size=12, start_id=START, order=3)
    found = lm.token_probs(sequences[:4])
    assert [len(p) for p in found] == [len(s) for s in sequences[:4]]
    for seq, probs in zip(sequences[:4], found):
        history = [START, START]
        for t, p in zip(seq, probs):
            assert p == pytest.approx(lm.distribution(np.array([history[-2:]]))[0, t], rel=1e-6)
            history.append(t)


def test_copy_with_nothing_to_count_is_refused():
    with pytest.raises(ValueError, match="no copy"):
        NgramLM.build([[], []], vocab_size=12, start_id=START)


def test_each_type_with_enough_copy_gets_a_model_of_its_own_and_the_rest_the_model_of_all(tmp_path):
    rng = random.Random(5)
    sequences = random_copy(rng, 60)
    keys = ["裤"] * 30 + ["裙"] * 25 + ["帽"] * 5
    models = NgramSet.build(sequences, keys, vocab_size=12, start_id=START, min_copies=10)
    assert list(models.models) == [ngram.ALL, "裙", "裤"]  # 帽 has too little copy
    assert models.key_for("类型#裤*颜色#黑色") == "裤" and models.key_for("类型#帽*颜色#黑色") == ngram.ALL
    contexts = np.array([[rng.randrange(0, 12) for _ in range(4)] for _ in range(50)])
    trousers = NgramLM.build(sequences[:30], vocab_size=12, start_id=START)
    np.testing.assert_array_equal(models.models["裤"].distribution(contexts), trousers.distribution(contexts))
    models.save(tmp_path / ngram.FILE)
    again = NgramSet.load(tmp_path / ngram.FILE)
    assert list(again.models) == list(models.models)
    for key, lm in models.models.items():
        np.testing.assert_array_equal(lm.distribution(contexts), again.models[key].distribution(contexts))
    assert (again.order, again.vocab_size, again.start_id) == (5, 12, START)


@pytest.mark.parametrize(("source", "key"), [
    ("类型#裤*颜色#黑色", "裤"),
    ("黑色铅笔裤 | 颜色#黑色*类型#裤 | 好穿", "裤"),
    ("[BOS][LEN_M][STYLE_AD]白衬衫 | 类型#上衣[SEP]新品", "上衣"),  # a prompt, as the rescore reads it
    ("黑色铅笔裤 | 颜色#黑色", ngram.ALL),
    ("面料类型#棉*类型#裤", "裤"),  # only an attribute's own key
    ("", ngram.ALL),
])
def test_the_type_of_a_source_is_its_first_type_attribute(source, key):
    assert ngram.key_of(source) == key


def test_orders_and_vocabularies_that_do_not_pack_into_a_key_are_refused():
    with pytest.raises(ValueError, match="order 6"):
        NgramLM.build([[2, 3, 0]], vocab_size=12, start_id=START, order=6)
    with pytest.raises(ValueError, match="70000 tokens"):
        NgramLM.build([[2, 3, 0]], vocab_size=70000, start_id=START)


def test_the_networks_share_is_the_one_with_the_lowest_validation_perplexity():
    # the network is sure of the first half of the tokens, the n-gram model of the second half
    network = np.array([0.9] * 50 + [0.01] * 50)
    counts = np.array([0.01] * 50 + [0.9] * 50)
    weight, perplexity = choose_weight(network, counts)
    assert weight == 0.5  # symmetric, so the middle
    assert perplexity["network"] == pytest.approx(math.exp(-np.mean(np.log(network))))
    assert perplexity["mixed"] < min(perplexity["network"], perplexity["ngram"])
    assert choose_weight(network, network * 0.5)[0] == max(ngram.WEIGHTS)  # a worse n-gram model gets the least


# -- the engine ----------------------------------------------------------------------------------

SOURCES = ["类型#上衣*颜色#白色*材质#棉", "类型#裙*颜色#黑色*裙长#连衣裙", "类型#裤*裤型#阔腿裤*材质#牛仔布"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ngram") / "tiny", steps=30, ngram_order=ngram.ORDER)


@pytest.fixture(scope="module")
def engine(tiny):
    return Generator.load(tiny, device="cpu", batch_size=3, dtype="float32")


def test_training_keeps_the_ngram_model_and_its_share_in_the_checkpoint(tiny, engine):
    manifest = json.loads((tiny / "copygen.json").read_text(encoding="utf-8"))
    record = manifest["ngram"]
    assert record["order"] == ngram.ORDER and record["weight"] in ngram.WEIGHTS
    assert set(record["val_perplexity"]) == {"network", "ngram", "mixed"}
    assert manifest["metrics"]["val_perplexity_mixed"] == record["val_perplexity"]["mixed"]
    assert (tiny / ngram.FILE).is_file()
    assert engine.ngram_weight == record["weight"]
    assert Generator.load(tiny, device="cpu", use_ngram=False).ngram_weight is None


def by_type(engine: Generator, order: int = ngram.ORDER) -> NgramSet:
    """n-gram models of the tiny training copy, one per type (24, 16 and 8 copies)."""
    pairs = tiny_pairs()
    eos = engine.tokenizer.convert_tokens_to_ids("[EOS]")
    copies = [engine.tokenizer.encode(p.copy, add_special_tokens=False) + [eos] for p in pairs]
    return NgramSet.build(copies, [ngram.key_of(p.source) for p in pairs], vocab_size=engine.vocab_size,
                          start_id=engine.tokenizer.convert_tokens_to_ids("[SEP]"), min_copies=5, order=order)


@pytest.mark.parametrize(("native", "order"), [(True, 5), (False, 5), (True, 1)],
                         ids=["native", "hugging-face", "unigrams"])
def test_with_no_share_for_the_network_every_row_writes_the_ngram_models_greedy_copy(engine, native, order):
    # more rows than slots (refilled slots start from their own opening) and openings of 0-3 tokens
    models = by_type(engine, order)
    assert len(models.models) == 4  # all the copy, 上衣, 裙, 裤: each row must read its own type's
    generator = Generator(engine.model, engine.tokenizer, engine.manifest, "cpu", batch_size=3, native=native,
                          mixture=(models, 0.0))
    openings = ["", "这款", "宽松的", "白"]
    requests = [Request(s, variants=2, opening=o) for s in [*SOURCES, "颜色#白色*材质#棉"] for o in openings]
    written = generator.generate_ids(requests, greedy=True, max_new_tokens=25, honour_length=False)
    never = set(generator._never_ids)
    for request, rows in zip(requests, written):
        lm = models.models[models.key_for(request.source)]
        history = [lm.start_id] * (lm.order - 1) + engine.tokenizer.encode(request.opening, add_special_tokens=False)
        expected = []
        while len(expected) < 25:
            p = lm.distribution(np.array([history[len(history) - (lm.order - 1):]]))[0]
            p[sorted(never)] = -1
            token = int(p.argmax())
            if token == generator.eos_id:
                break
            expected.append(token)
            history.append(token)
        assert rows == [expected, expected]


def test_a_candidates_logprob_and_the_rescore_are_the_mixtures(tiny, engine):
    models, weight = engine._mixer.models, engine.ngram_weight
    requests = [Request(s, variants=2, opening=o) for s, o in zip(SOURCES, ["", "这款", "宽松的"])]
    sample = {"seed": 3, "max_new_tokens": 30, "temperature": 1.2, "top_p": 0.9}
    candidates = engine.generate_candidates(requests, **sample)
    ids = engine.generate_ids(requests, **sample)
    items = []
    for request, variants, rows in zip(requests, candidates, ids):
        prompt = engine.prompt_ids(request, 30)
        opening = engine.tokenizer.encode(request.opening, add_special_tokens=False)
        for candidate, row in zip(variants, rows):
            written = row + [engine.eos_id] * (candidate.tokens - len(row))
            with torch.inference_mode():
                network = engine.model(torch.tensor([prompt + written])).logits[0, len(prompt) - 1:-1].softmax(-1)
            network = network.gather(1, torch.tensor(written)[:, None]).squeeze(1).double().numpy()
            [counted] = models.token_probs([opening + written], [ngram.key_of(request.source)])
            counted = counted[len(opening):]
            expected = np.log(weight * network + (1 - weight) * counted).mean()
            assert candidate.logprob == pytest.approx(expected, abs=1e-3)
            if len(written) == len(row) + 1:  # rescoring reads finished copy: the end token included
                from copygen import prompt as template

                items.append((template.render_prompt(request.source, opening=request.opening),
                              engine.tokenizer.decode(row), candidate.logprob))
    assert items
    again = mean_logprobs(tiny, [(p, c) for p, c, _ in items])
    assert again == pytest.approx([lp for _, _, lp in items], abs=1e-3)


def test_a_checkpoint_whose_ngram_file_is_missing_or_whose_share_is_wrong_is_refused(tiny, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    (broken / ngram.FILE).unlink()
    with pytest.raises(CheckpointError, match="ngram.npz is missing"):
        Generator.load(broken, device="cpu")
    shutil.copyfile(tiny / ngram.FILE, broken / ngram.FILE)
    manifest = json.loads((broken / "copygen.json").read_text(encoding="utf-8"))
    manifest["ngram"]["weight"] = 1.5
    (broken / "copygen.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CheckpointError, match="n-gram weight 1.5"):
        Generator.load(broken, device="cpu")


def test_an_ngram_order_it_cannot_build_is_refused_before_training(tmp_path):
    with pytest.raises(TrainError, match="--ngram-order 9"):
        train(TrainOptions(data=[tmp_path / "unused.jsonl"], out=tmp_path / "m", ngram_order=9))
