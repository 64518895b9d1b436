"""The generation engine the worker runs: continuous batching, sampling, banned phrases, on a tiny model."""

from __future__ import annotations

import copy
import logging
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from trainer import wordpairs
from trainer.generation import (
    CLAUSE_TRIES,
    Generator,
    Request,
    _attention_kernel,
    _ban_early_end,
    _ban_named_again,
    _ban_repeats,
    _ban_stutter,
    _Clauses,
    _names,
    _Sampler,
    _Slots,
)
from trainer.generation import generator as generator_module
from trainer.generation.sampling import _ban_adding_again, _openings
from trainer.testing import tiny_checkpoint

SOURCES = [
    "类型#上衣*颜色#白色*材质#棉*风格#简约",
    "类型#裙*颜色#黑色*裙长#连衣裙*风格#复古",
    "类型#裤*版型#宽松*裤型#阔腿裤*材质#牛仔布",
    "类型#上衣*颜色#粉色*衣样式#卫衣*图案#字母",
    "类型#裙*材质#雪纺*图案#碎花*裙型#a字",
    "类型#上衣*材质#针织*衣样式#毛衣*颜色#灰色",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    _attention_kernel(32, wait=True)  # built once per machine: every generator below decodes the same way
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", steps=60)


@pytest.fixture(scope="module")
def engine(tiny):
    return Generator.load(tiny, device="cpu", batch_size=4, dtype="float32")


def mixed_requests() -> list[Request]:
    """Requests whose rows end at different steps: different budgets, openings and variant counts."""
    lengths = ["short", "medium", "short", "long", "medium", "short"]
    openings = ["", "新品上市，", "", "这款", "", ""]
    return [Request(s, variants=1 + n % 3, length=lengths[n], opening=openings[n]) for n, s in enumerate(SOURCES)]


def test_every_request_gets_its_variants_in_order_each_starting_with_its_opening(engine):
    requests = mixed_requests() + [Request(SOURCES[0], variants=0)]
    texts = engine.generate(requests, seed=3, max_new_tokens=24)
    assert [len(t) for t in texts] == [r.variants for r in requests]
    for request, variants in zip(requests, texts):
        assert all(t.startswith(request.opening) and len(t) > len(request.opening) for t in variants)
        assert all("[" not in t for t in variants)  # no control code leaks out
    assert engine.generate([], seed=3) == []


def test_the_same_seed_repeats_the_copy_and_another_seed_changes_it(engine):
    requests = mixed_requests()
    first = engine.generate(requests, seed=11, max_new_tokens=30)
    assert engine.generate(requests, seed=11, max_new_tokens=30) == first
    assert engine.generate(requests, seed=12, max_new_tokens=30) != first


def test_variants_of_one_product_differ_when_sampled(engine):
    [variants] = engine.generate([Request(SOURCES[1], variants=6)], seed=5, max_new_tokens=40, temperature=1.2,
                                 top_p=0.95)
    assert len(set(variants)) > 1


def test_rows_finishing_at_different_times_write_what_each_row_writes_alone_greedily(tiny):
    batched = Generator.load(tiny, device="cpu", batch_size=3, dtype="float32")  # fewer slots than rows: refills
    requests = mixed_requests()
    together = batched.generate_ids(requests, greedy=True)
    lengths = {len(ids) for variants in together for ids in variants}
    assert len(lengths) > 1  # the rows really did end at different steps
    alone = Generator.load(tiny, device="cpu", batch_size=1, dtype="float32")
    for request, variants in zip(requests, together):
        [mine] = alone.generate_ids([request], greedy=True)
        assert variants == mine


def test_a_sampled_row_depends_on_the_seed_and_its_request_not_on_its_batch(tiny):
    requests = mixed_requests()
    wide = Generator.load(tiny, device="cpu", batch_size=16, dtype="float32")
    narrow = Generator.load(tiny, device="cpu", batch_size=2, dtype="float32")
    assert wide.generate(requests, seed=9) == narrow.generate(requests, seed=9)
    assert wide.generate(requests[:1], seed=9)[0] == wide.generate(requests, seed=9)[0]


def test_the_native_gpt2_path_matches_the_hugging_face_forward(tiny, engine):
    exact = Generator.load(tiny, device="cpu", batch_size=4, dtype="float32", attention="matmul")  # float32 cache
    generic = Generator(engine.model, engine.tokenizer, engine.manifest, "cpu", batch_size=4, native=False)
    requests = mixed_requests()
    assert exact.generate_ids(requests, greedy=True) == generic.generate_ids(requests, greedy=True)
    assert exact.generate(requests, seed=4) == generic.generate(requests, seed=4)
    assert engine.generate_ids(requests, greedy=True) == exact.generate_ids(requests, greedy=True)


def test_the_fused_attention_kernel_computes_masked_attention_over_a_bfloat16_cache():
    attend = _attention_kernel(32, wait=True)
    if attend is None:
        pytest.skip("no C++ compiler for torch's Inductor here: the engine uses the matmul path")
    g = torch.Generator().manual_seed(1)
    for slots, heads, span, seen in ((3, 2, 8, 5), (17, 4, 60, 41), (5, 6, 20, 20)):
        q = torch.randn(slots, heads, 32, generator=g)
        keys, values = (torch.randn(slots, heads, span, 32, generator=g).to(torch.bfloat16) for _ in range(2))
        bias = torch.zeros(slots, 1, seen)
        bias[0, 0, seen // 2:] = float("-inf")  # a slot that has written only half the positions
        weights = ((q[:, :, None, :] * keys[:, :, :seen].float()).sum(-1) + bias).softmax(-1)
        expected = (weights[..., None] * values[:, :, :seen].float()).sum(2)
        assert torch.allclose(attend(q, keys, values, bias), expected, atol=1e-5)


def test_greedy_copy_is_what_hugging_face_generate_writes(engine):
    request = Request(SOURCES[2], length="short")
    [[mine]] = engine.generate_ids([request], greedy=True, max_new_tokens=40)
    ids = engine.prompt_ids(request, 40)
    with torch.inference_mode():
        out = engine.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                    max_new_tokens=40, do_sample=False, eos_token_id=engine.eos_id,
                                    pad_token_id=engine.pad_id, bad_words_ids=[[t] for t in engine._never_ids])
    reference = out[0, len(ids):].tolist()
    assert mine == reference[: reference.index(engine.eos_id)] if engine.eos_id in reference else reference


def test_banned_phrases_are_never_written_even_across_the_opening(engine):
    # Phrases the tiny corpus writes often, one of them four characters long, and an opening that
    # ends inside a phrase: the only thing standing between the model and them is the blocker.
    banned = ["百搭", "显瘦", "柔软亲肤", "简约"]
    requests = [Request(s, variants=6, opening=o) for s in SOURCES[:3] for o in ("", "柔软亲", "百")]
    free = engine.generate(requests, seed=1, max_new_tokens=40, temperature=1.3, top_p=1.0)
    assert any(p in t for variants in free for t in variants for p in banned)
    blocked = engine.generate(requests, seed=1, max_new_tokens=40, temperature=1.3, top_p=1.0, banned=banned)
    assert not [t for variants in blocked for t in variants for p in banned if p in t]


def forced_toward(engine: Generator, token: str, native: bool = True) -> Generator:
    """The tiny model, changed to write `token` next whatever came before (log p ~ 0): one coordinate
    of the final hidden state is pinned at 40 and only that token's output row reads it."""
    model = copy.deepcopy(engine.model)
    t = engine.tokenizer.convert_tokens_to_ids(token)
    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())  # untied from wte
        model.transformer.ln_f.weight[0] = 0.0
        model.transformer.ln_f.bias[0] = 40.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[t, 0] = 1.0
    return Generator(model, engine.tokenizer, engine.manifest, "cpu", batch_size=4, native=native)


@pytest.mark.parametrize("native", [True, False], ids=["native", "hugging-face"])
def test_a_requests_own_banned_phrase_is_never_written_by_its_rows_while_other_rows_of_the_batch_write_it(
        engine, native):
    forced = forced_toward(engine, "裤", native)  # after the opening 牛仔 the model writes 牛仔裤
    free = Request(SOURCES[2], variants=3, opening="牛仔")
    linen = Request(SOURCES[2], variants=3, opening="牛仔", banned=("牛仔裤",))  # its attributes rule 牛仔裤 out
    [free_copy, linen_copy] = forced.generate_candidates([free, linen], seed=1, max_new_tokens=12)
    assert all(c.text.startswith("牛仔裤") and c.logprob > -0.01 for c in free_copy)
    assert not [c for c in linen_copy if "牛仔裤" in c.text]  # not even across the opening
    assert all("裤" in c.text for c in linen_copy)  # the phrase is blocked, not its characters
    # the log-probability is the model's own, before blocking: the token written instead of 裤 is unlikely
    assert all(c.logprob < -1 for c in linen_copy)


def test_requests_with_different_phrase_sets_in_one_batch_each_block_their_own_on_top_of_the_calls(engine):
    forced = forced_toward(engine, "裤")
    sets = [(), ("牛仔裤", "阔腿裤"), ("裤",), ("裤裤",), ("阔腿裤", "牛仔裤")]  # the last: the second's set again
    requests = [Request(SOURCES[2], variants=3, opening="牛仔", banned=b) for b in sets]
    automata = Generator._request_blocker.cache_info().currsize
    texts = forced.generate(requests, seed=2, max_new_tokens=12, banned=["裤裤裤"])  # 15 rows, 4 slots: refills
    assert Generator._request_blocker.cache_info().currsize == automata + 3  # equal sets share one automaton
    free, word, char, twice, word_again = texts
    assert all("牛仔裤" in t and "裤裤" in t for t in free)
    assert not [t for t in free + word + char + twice + word_again if "裤裤裤" in t]  # the call's phrase
    assert all("牛仔裤" not in t and "裤" in t for t in word + word_again)
    assert all("裤" not in t for t in char)  # a phrase of one token
    assert all("牛仔裤" in t and "裤裤" not in t for t in twice)
    assert forced.generate(requests[:1], seed=2, max_new_tokens=12, banned=["裤裤裤"]) == [free]


def test_rows_without_phrases_of_their_own_write_the_same_copy_beside_rows_with_them(engine):
    requests = mixed_requests()
    sample = {"seed": 8, "max_new_tokens": 30, "temperature": 1.2, "top_p": 0.9}
    plain = engine.generate(requests, **sample)
    beside = engine.generate([replace(r, banned=("百搭", "显瘦", "的")) if n % 2 else r
                              for n, r in enumerate(requests)], **sample)
    assert beside[0::2] == plain[0::2]
    assert beside[1::2] != plain[1::2]
    candidates = engine.generate_candidates(requests, **sample)
    assert [[c.text for c in variants] for variants in candidates] == plain
    with pytest.raises(TypeError, match="banned"):
        Request(SOURCES[0], banned="牛仔裤")  # would ban 牛, 仔 and 裤 one by one


CLAUSE_CHECKS = {"every-clause-kept": {}, "unlikely-clauses-drawn-again": {"clause_floor": -1.0},
                 "spliced-clauses-drawn-again": {"word_pairs": True}}


@pytest.mark.parametrize("checks", CLAUSE_CHECKS)
@pytest.mark.parametrize("decoder", ["native", "native-float32-cache", "hugging-face"])
def test_a_candidates_logprob_is_the_mean_log_probability_of_its_tokens_under_a_plain_forward_pass(
        tiny, engine, decoder, checks):
    """With clause checks too: a clause drawn again leaves nothing behind in the cache or the score."""
    if decoder == "native":
        generator = engine  # as the worker decodes: a bfloat16 cache where the fused kernel is built
    elif decoder == "native-float32-cache":
        generator = Generator.load(tiny, device="cpu", batch_size=3, dtype="float32", attention="matmul")
    else:
        generator = Generator(engine.model, engine.tokenizer, engine.manifest, "cpu", batch_size=3, native=False,
                              word_pairs=engine.word_pairs)
    requests = mixed_requests()
    # temperature, top-p, blocking and the repeat ban change what is drawn, not how it is scored
    checks = CLAUSE_CHECKS[checks]
    budget = 50 if checks else 30  # clauses drawn again end more copy before the budget
    sample = {"seed": 6, "max_new_tokens": budget, "temperature": 1.3, "top_p": 0.8, "banned": ["百搭", "简约"],
              "no_repeat_ngram": 2, **checks}
    candidates = generator.generate_candidates(requests, **sample)
    if checks:  # clauses were drawn again
        assert candidates != generator.generate_candidates(requests, **{**sample, **dict.fromkeys(checks)})
    ids = generator.generate_ids(requests, **sample)
    ended = 0
    for request, variants, rows in zip(requests, candidates, ids):
        prompt = generator.prompt_ids(request, budget)
        for candidate, row in zip(variants, rows):
            written = row + [generator.eos_id] * (candidate.tokens - len(row))  # the end token, when written
            assert len(written) - len(row) in (0, 1)
            ended += len(written) - len(row)
            with torch.inference_mode():
                logits = engine.model(torch.tensor([prompt + written])).logits[0, len(prompt) - 1:-1]
            expected = logits.log_softmax(-1).gather(1, torch.tensor(written)[:, None]).mean().item()
            assert candidate.logprob == pytest.approx(expected, abs=1e-3)
    assert 0 < ended < sum(r.variants for r in requests)  # rows that wrote the end token, and rows cut off


def _clause_means(generator: Generator, request: Request, text: str) -> list[float]:
    """The mean log-probability per token of each clause of text (the last with the end token)."""
    prompt = generator.prompt_ids(request, 60)
    ids = generator.tokenizer.encode(text, add_special_tokens=False) + [generator.eos_id]
    with torch.inference_mode():
        logits = generator.model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1:-1]
    logps = logits.log_softmax(-1).gather(1, torch.tensor(ids)[:, None]).squeeze(1).tolist()
    marks = {generator.tokenizer.convert_tokens_to_ids(m) for m in "，。！？；"} | {generator.eos_id}
    means, start = [], 0
    for i, token in enumerate(ids):
        if token in marks:
            means.append(sum(logps[start:i + 1]) / (i + 1 - start))
            start = i + 1
    return means


def test_with_a_clause_floor_far_fewer_clauses_fall_below_it(engine):
    requests = [Request(source, variants=8) for source in SOURCES]
    sample = {"seed": 2, "max_new_tokens": 60, "temperature": 1.0, "top_p": 1.0}
    below = {}
    for floor in (None, -1.5):
        texts = engine.generate(requests, **sample, clause_floor=floor)
        means = [m for request, variants in zip(requests, texts) for text in variants
                 for m in _clause_means(engine, request, text)]
        below[floor] = sum(m < -1.5 for m in means) / len(means)
    assert below[None] > 0.5  # a tiny model garbles most clauses it samples
    assert below[-1.5] < below[None] / 2


def _unseen_share(generator: Generator, texts) -> float:
    """The share of the clauses of texts with a pair of neighbouring words the training copy lacks."""
    clauses = [c for text in texts for c in wordpairs.clauses(text)]
    return sum(bool(generator.word_pairs.unseen(c)) for c in clauses) / len(clauses)


def test_with_word_pairs_far_fewer_clauses_join_words_the_training_copy_never_joins(engine):
    requests = [Request(source, variants=8) for source in SOURCES]
    sample = {"seed": 2, "max_new_tokens": 60, "temperature": 1.0, "top_p": 1.0}
    plain = _unseen_share(engine, [t for variants in engine.generate(requests, **sample) for t in variants])
    checked = _unseen_share(engine, [t for variants in engine.generate(requests, **sample, word_pairs=True)
                                     for t in variants])
    assert plain > 0.3  # a tiny model splices many clauses it samples
    assert checked < plain / 2


def test_a_checkpoint_without_word_pairs_decodes_as_before_and_says_so(engine, caplog):
    bare = Generator(engine.model, engine.tokenizer, engine.manifest, "cpu", batch_size=4)
    requests = [Request(source, variants=2) for source in SOURCES[:2]]
    sample = {"seed": 4, "max_new_tokens": 30}
    with caplog.at_level(logging.WARNING):
        assert bare.generate(requests, **sample, word_pairs=True) == bare.generate(requests, **sample)
    assert "has no word pairs" in caplog.text


def test_a_clause_that_joins_unseen_words_goes_back_and_one_that_does_not_is_kept():
    text = "，修饰颈部线条纹的设计条纹图案"
    ids = {ch: i + 10 for i, ch in enumerate(dict.fromkeys(text))}
    comma, eos = ids["，"], 2
    chars = {i: ch for ch, i in ids.items()}
    pairs = wordpairs.WordPairs.count(["修饰颈部线条，条纹的设计。"])
    slots = _Slots(2, 20)
    slots.row[:], slots.budget[:] = [0, 1], 20
    slots.mark(np.arange(2))
    # slot 0 writes a splice of 线条 and 条纹, slot 1 a clause of the training copy; both as likely
    for slot, clause in enumerate(["修饰颈部线条纹，", "条纹的设计，"]):
        slots.out[slot, :len(clause)] = [ids[ch] for ch in clause]
        slots.done[slot], slots.pos[slot] = len(clause), 10 + len(clause)
    slots.logprob[:] = -0.1
    clauses = _Clauses({comma}, floor=None, pairs=pairs, decode=lambda row: "".join(chars[i] for i in row))
    got = np.array([comma, comma])
    back, written = clauses.review(slots, got, got != eos, np.ones(2, dtype=bool), eos)
    assert back.tolist() == [0] and written.tolist() == [8]
    assert slots.done[0] == 0 and slots.tries[0] == 1
    assert slots.done[1] == 6 and slots.marks["done"][1] == 6  # kept: the next clause begins after it
    # naming one of its product's values for the first time does not keep a splice (it does an unlikely clause)
    slots.done[0], slots.written[0] = 8, 0b1
    back, _ = clauses.review(slots, got, got != eos, np.array([True, False]), eos)
    assert back.tolist() == [0] and slots.tries[0] == 2 and slots.written[0] == 0


def test_a_clause_saying_a_word_the_clause_before_it_in_its_sentence_said_goes_back():
    copies = ["宽松的廓形，宽松版型，", "宽松的廓形，遮肉显瘦，", "宽松的廓形。宽松版型，", "高腰的设计，小脚的设计，"]
    ids = {ch: i + 10 for i, ch in enumerate(dict.fromkeys("".join(copies)))}
    comma, stop, eos = ids["，"], ids["。"], 2
    chars = {i: ch for ch, i in ids.items()}
    slots = _Slots(4, 20)
    slots.row[:], slots.budget[:] = range(4), 20
    for slot, text in enumerate(copies):  # each has written its first clause and begins its second
        slots.out[slot, :len(text)] = [ids[ch] for ch in text]
        slots.done[slot], slots.pos[slot] = 6, 16
    slots.mark(np.arange(4))
    slots.done[:] = [len(text) for text in copies]
    slots.logprob[:] = -0.1
    clauses = _Clauses({comma, stop}, floor=None, decode=lambda row: "".join(chars[i] for i in row), pause_ids={comma})
    got = np.full(4, comma)
    back, _ = clauses.review(slots, got, got != eos, np.ones(4, dtype=bool), eos)
    # 宽松 twice in a sentence; not after 遮肉显瘦, nor across a full stop, nor 设计 (what every feature is)
    assert back.tolist() == [0] and slots.done[0] == 6 and slots.tries[0] == 1
    assert _Clauses({comma, stop}, floor=None, decode=None, pause_ids={comma}).pause_ids == set()  # nothing to read with


def test_a_clause_below_the_floor_goes_back_to_where_it_began_and_the_last_try_is_kept():
    comma, eos = 7, 2
    slots = _Slots(4, 10)
    slots.row[:] = [0, 1, 2, 3]
    slots.budget[:] = 10
    # each slot began its clause after 2 tokens, at cache position 12, the token before it 9
    slots.done[:], slots.pos[:], slots.logprob[:], slots.state[:] = 2, 12, -1.0, 5
    slots.mark(np.arange(4))
    slots.last[:] = 9
    slots.tries[2] = CLAUSE_TRIES  # slot 2 is on its last try
    # then wrote 3 tokens, the last a comma (to be fed at 14); slot 3 wrote the end right away
    slots.done[:3], slots.pos[:3], slots.state[:] = 5, 14, 6
    slots.logprob[:] = [-2.5, -7.0, -7.0, -1.1]  # clause means -0.5, -2, -2 and (the end alone) -0.1
    key = slots.key.copy()
    got = np.array([comma, comma, comma, eos])
    back, written = _Clauses({comma}, floor=-1.0).review(slots, got, got != eos, np.ones(4, dtype=bool), eos)

    assert back.tolist() == [1] and written.tolist() == [3]
    # slot 1 is where its clause began: the token before it is fed again at its position
    assert (slots.done[1], slots.pos[1], slots.logprob[1], slots.state[1]) == (2, 11, -1.0, 5)
    assert slots.tries[1] == 1 and slots.last[1] == 9 and slots.key[1] != key[1]  # fresh draws
    # slots 0 and 2 keep their clause and begin the next after the comma
    for s in (0, 2):
        assert slots.done[s] == 5 and slots.pos[s] == 14 and slots.tries[s] == 0 and slots.last[s] == comma
        assert (slots.marks["done"][s], slots.marks["pos"][s], slots.marks["state"][s]) == (5, 15, 6)
    assert slots.key[0] == key[0] and slots.key[2] == key[2]
    assert slots.done[3] == 2 and slots.logprob[3] == -1.1  # an end after a full stop is no clause
    # a clause as unlikely that names one of its product's values for the first time is kept
    slots.mark(np.array([1]))
    slots.done[1], slots.logprob[1], slots.written[1] = 5, -7.0, 0b10
    back, _ = _Clauses({comma}, floor=-1.0).review(slots, got, got != eos, np.array([False, True, False, False]), eos)
    assert not len(back) and slots.done[1] == 5 and slots.marks["written"][1] == 0b10


def test_a_clause_written_off_the_clause_book_is_drawn_again_whatever_its_odds():
    comma, eos = 7, 2
    slots = _Slots(3, 10)
    slots.row[:], slots.budget[:] = [0, 1, 2], 10
    slots.done[:], slots.pos[:], slots.logprob[:] = 2, 12, -1.0
    slots.mark(np.arange(3))
    slots.done[:], slots.pos[:], slots.logprob[:] = 5, 14, -1.3  # a likely clause (mean -0.1) in each
    slots.offbook[:] = [True, False, True]  # slots 0 and 2 left the book on the way
    slots.tries[2] = CLAUSE_TRIES  # ... slot 2 on its last try, which is kept
    got = np.array([comma] * 3)
    back, _ = _Clauses({comma}, floor=None).review(slots, got, got != eos, np.ones(3, dtype=bool), eos)
    assert back.tolist() == [0] and slots.done[0] == 2 and slots.tries[0] == 1
    assert slots.done[1] == slots.done[2] == 5
    assert not slots.offbook.any()  # each slot begins its next clause (or this one again) on the book


def test_the_last_try_of_a_clause_is_greedy_and_ends_a_row_only_when_nothing_else_may_be_written():
    slots = _Slots(3, 8)
    slots.row[:] = [0, 1, 2]
    slots.tries[:] = [CLAUSE_TRIES, CLAUSE_TRIES, 0]
    scores = torch.tensor([[0.0, 5.0, 1.0, 2.0],  # the end (1) likeliest, but 3 may be written: 3
                           [-torch.inf, 5.0, -torch.inf, -torch.inf],  # nothing but the end: the end
                           [0.0, 5.0, 1.0, 2.0]])  # not on its last try: as sampled
    tokens = _Clauses({0}, floor=-1.0).settle(torch.tensor([2, 2, 2]), scores, slots, np.ones(3, dtype=bool), 1)
    assert tokens.tolist() == [3, 1, 2]


def test_no_row_ends_before_the_fewest_characters_of_its_length_unless_its_budget_runs_out(engine):
    forced = forced_toward(engine, "[EOS]")  # ends every copy at once when free to
    requests = [Request(SOURCES[0], length="short"), Request(SOURCES[1], opening="新品上市，"),
                Request(SOURCES[2], length="long", variants=2)]
    assert forced.generate(requests, seed=3, honour_length=False) == [[""], ["新品上市，"], ["", ""]]
    floored = forced.generate(requests, seed=3)
    for request, variants in zip(requests, floored):
        fewest = forced.fewest_chars(request.length)
        assert fewest > len(request.opening)
        assert [len(text) for text in variants] == [fewest] * request.variants  # ended as soon as it may
    [[cut]] = forced.generate(requests[1:2], seed=3, max_new_tokens=10)
    assert cut.startswith("新品上市，") and len(cut) == len("新品上市，") + 10  # the budget still ends it
    opening = "新" * forced.fewest_chars("short")  # an opening that already holds the floor
    assert forced.generate([Request(SOURCES[0], length="short", opening=opening)], seed=3) == [[opening]]


def test_a_row_that_can_write_nothing_but_the_end_may_end_before_its_floor():
    slots = _Slots(3, 8)
    slots.row[:] = [0, 1, 2]
    slots.floor[:] = [10, 10, 0]
    scores = torch.zeros(3, 5)
    scores[1, [0, 1, 3, 4]] = -torch.inf  # row 1: every token but the end (2) is masked
    _ban_early_end(scores, slots, np.ones(3, dtype=bool), eos_id=2)
    assert scores[:, 2].tolist() == [-torch.inf, 0.0, 0.0]  # row 2 has written its floor (0)


def _repeats(ids: list[int], n: int) -> int:
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(grams) - len(set(grams))


def test_no_row_repeats_an_ngram_when_asked(engine):
    requests = [Request(s, variants=3) for s in SOURCES]
    sample = {"seed": 3, "max_new_tokens": 80, "temperature": 1.2, "top_p": 1.0}
    free = engine.generate_ids(requests, **sample)
    assert any(_repeats(row, 2) for variants in free for row in variants)  # small models stutter
    ruled = engine.generate_ids(requests, **sample, no_repeat_ngram=2)
    assert all(_repeats(row, 2) == 0 for variants in ruled for row in variants)
    assert sum(len(row) for variants in ruled for row in variants) > 10 * len(SOURCES)  # still writes copy


def test_the_repeat_rule_bans_exactly_the_followers_of_earlier_copies_of_the_last_tokens():
    out = np.array([[1, 2, 3, 1, 2, 0, 0],    # ...1 2 -> 3 would repeat "1 2 3"
                    [1, 2, 5, 1, 2, 6, 1],    # ...6 1: "6 1" never came before; nothing banned
                    [4, 4, 4, 0, 0, 0, 0],    # ...4 4 -> 4 would repeat "4 4 4"
                    [1, 2, 3, 1, 2, 0, 0]])   # the same as row 0, but its slot is not live
    done = np.array([5, 7, 3, 5])
    live = np.array([True, True, True, False])
    banned = torch.isinf(_ban_repeats(torch.zeros(4, 8), out, done, live, 3)).nonzero().tolist()
    assert banned == [[0, 3], [2, 4]]


def test_the_stutter_rule_bans_the_token_that_would_double_a_run_of_two_or_three():
    out = np.array([[7, 1, 2, 1, 0, 0, 0],    # 1 2 1 -> 2 would write "1 2 1 2"
                    [5, 1, 2, 3, 1, 2, 0],    # 1 2 3 1 2 -> 3 would write "1 2 3 1 2 3"
                    [4, 4, 4, 0, 0, 0, 0],    # 4 4 4 -> 4 would write "4 4 4 4"
                    [1, 2, 9, 1, 0, 0, 0],    # 1 2 9 1 -> 2 would write "1 2 9 1 2" (one token between)
                    [1, 2, 3, 4, 5, 6, 0],    # no run about to double: nothing banned
                    [1, 2, 1, 0, 0, 0, 0]])   # the same as row 0, but its slot is not live
    done = np.array([4, 6, 3, 4, 6, 3])
    live = np.array([True, True, True, True, True, False])
    banned = torch.isinf(_ban_stutter(torch.zeros(6, 10), out, done, live)).nonzero().tolist()
    assert banned == [[0, 2], [1, 3], [2, 4], [3, 2]]


def test_a_row_that_has_written_one_naming_phrase_writes_none_again():
    phrases = [[1, 2], [1, 3]]                # 这款 and 这件, say
    out = np.array([[1, 2, 5, 1, 0, 0, 0],    # wrote 1 2 -> after 1, neither 2 nor 3
                    [1, 3, 1, 0, 0, 0, 0],    # wrote 1 3 -> the same
                    [5, 1, 0, 0, 0, 0, 0],    # wrote neither yet: 1 2 is free to write
                    [1, 2, 5, 7, 0, 0, 0],    # wrote 1 2, but not about to write another
                    [1, 2, 5, 1, 0, 0, 0]])   # the same as row 0, but its slot is not live
    done = np.array([4, 3, 2, 4, 4])
    live = np.array([True, True, True, True, False])
    written = np.zeros(5, dtype=bool)
    for step in range(1, 5):  # kept up to date token by token, as the decode loop does
        rows = np.flatnonzero(done >= step)
        written[rows] |= _names(out, np.full(5, step), rows, phrases)
    assert written.tolist() == [True, True, False, True, True]
    banned = torch.isinf(_ban_named_again(torch.zeros(5, 8), out, done, live, phrases, written)).nonzero().tolist()
    assert banned == [[0, 2], [0, 3], [1, 2], [1, 3]]


def test_a_copy_names_its_product_as_this_one_once(engine):
    forced = forced_toward(engine, "款")  # writes 款 wherever it may
    # 这款 in the source draws the model to 这 where 款 is banned; the opening counts as written
    requests = [Request("这款" + s, variants=2, opening="这款") for s in SOURCES]
    texts = [t for variants in forced.generate(requests, seed=3, max_new_tokens=20, no_repeat_ngram=4)
             for t in variants]
    assert all(t.startswith("这款") and t.count("这款") == 1 for t in texts)
    assert any("这" in t[2:] for t in texts)  # where the repeat ban sent the model to 这, 款 was barred


def test_a_clause_that_adds_never_follows_one_that_added():
    adding, marks = np.array([1, 2]), np.array([9])  # 而 and 更, say; 9 is the ，
    opens = opened = np.full(4, -1)
    for step in ([1, 5, 1, 5], [3, 9, 9, 9], [9, 1, 6, 2], [4, 4, 7, 8]):  # kept token by token, as the decode loop does
        opens, opened = _openings(opens, opened, np.array(step), marks)
    # row 0: "1 3 ，4" began its last clause with 1 and is in its next; row 1 "5 ，1 4": in a clause that adds;
    # row 2: "1 ，6 7" and row 3: "5 ，2 8" are in clauses too
    assert opens.tolist() == [4, 1, 6, 2] and opened.tolist() == [1, 5, 1, 5]
    opens, opened = _openings(opens, opened, np.array([9, 9, 9, 9]), marks)  # each ends its clause
    live = np.array([True, True, True, False])
    banned = torch.isinf(_ban_adding_again(torch.zeros(4, 10), opens, opened, live, adding)).nonzero().tolist()
    assert banned == [[1, 1], [1, 2]]  # only the row whose clause began with 1 (row 3's slot is not live)


def test_a_copy_never_adds_to_a_clause_that_added(engine, monkeypatch):
    # the tiny model's copy has none of ADDING's characters: its 柔 (柔软亲肤) and 简 (简约的版型) stand in
    monkeypatch.setattr(generator_module, "ADDING", "柔简")
    forced = forced_toward(engine, "柔")  # writes 柔 wherever it may
    sample = {"seed": 3, "max_new_tokens": 6, "no_repeat_ngram": 4}
    after_adding = forced.generate([Request(s, variants=2, opening="简约，") for s in SOURCES], **sample)
    assert all(t.startswith("简约，") and t[3] not in "柔简" for variants in after_adding for t in variants)
    after_other = forced.generate([Request(s, variants=2, opening="白色，") for s in SOURCES], **sample)
    assert all(t.startswith("白色，柔") for variants in after_other for t in variants)


def test_rows_decoded_under_the_repeat_rule_never_double_a_short_run(engine):
    forced = forced_toward(engine, "裤")  # writes 裤裤裤裤... when free
    requests = [Request(s, variants=2) for s in SOURCES]
    free = forced.generate_ids(requests, seed=5, max_new_tokens=12)
    assert all(_doubles(row) for variants in free for row in variants)
    ruled = forced.generate_ids(requests, seed=5, max_new_tokens=12, no_repeat_ngram=4)
    assert not any(_doubles(row) for variants in ruled for row in variants)
    pants = forced.tokenizer.convert_tokens_to_ids("裤")
    assert all(row[:2] == [pants] * 2 for variants in ruled for row in variants)  # up to the third


def _doubles(ids: list[int]) -> list[tuple[int, ...]]:
    """The runs of 2 or 3 tokens that ids write twice in a row or one token apart."""
    return [tuple(ids[i:i + n]) for n in (2, 3) for g in (0, 1) for i in range(len(ids) - 2 * n - g + 1)
            if ids[i:i + n] == ids[i + n + g:i + 2 * n + g]]


def test_nucleus_sampling_draws_only_inside_the_nucleus_in_proportion():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])  # nucleus for top_p 0.7: tokens 1 and 3
    logits = probs.log().repeat(4000, 1)
    keys = np.arange(4000, dtype=np.uint64) * np.uint64(7919)
    tokens = _Sampler(temperature=1.0, top_p=0.7, greedy=False)(logits, keys, np.zeros(4000, dtype=np.int64),
                                                                   np.ones(4000, dtype=bool))
    counts = torch.bincount(tokens, minlength=4).tolist()
    assert counts[0] == counts[2] == 0
    assert abs(counts[1] / 4000 - 0.5 / 0.8) < 0.03
    everything = _Sampler(temperature=1.0, top_p=1.0, greedy=False)(logits, keys, np.zeros(4000, dtype=np.int64),
                                                                    np.ones(4000, dtype=bool))
    assert abs(torch.bincount(everything, minlength=4)[2].item() / 4000 - 0.15) < 0.03


def _draw(probs: list[float], end_id: int | None, rows: int = 4000) -> list[int]:
    logits = torch.tensor(probs).log().repeat(rows, 1)
    keys = np.arange(rows, dtype=np.uint64) * np.uint64(7919)
    sampler = _Sampler(temperature=1.0, top_p=0.7, greedy=False, end_id=end_id)
    return torch.bincount(sampler(logits, keys, np.zeros(rows, dtype=np.int64), np.ones(rows, dtype=bool)),
                          minlength=len(probs)).tolist()


def _nucleus(probs: list[float], top_p: float = 0.7) -> list[int]:
    total = sum(probs)
    return [i for i, p in enumerate(probs) if sum(q for q in probs if q > p) < top_p * total]


def test_the_end_token_is_drawn_at_its_own_odds_when_it_lies_in_the_nucleus_and_never_outside_it():
    # after a full stop: the end (token 0) at 0.3, going on spread thin over 70 tokens
    going_on = [0.7 * (71 - i) / 2485 for i in range(1, 71)]
    after_stop = [0.3, *going_on]
    kept = _nucleus(after_stop)
    assert 0 in kept and len(kept) < 40
    plain = _draw(after_stop, end_id=None)  # top-p: the end at 0.3 / the nucleus's mass
    assert abs(plain[0] / 4000 - 0.3 / sum(after_stop[i] for i in kept)) < 0.03
    apart = _draw(after_stop, end_id=0)
    assert abs(apart[0] / 4000 - 0.3) < 0.03
    drawn = [i for i, n in enumerate(apart) if n and i]  # what to write next: inside its own nucleus
    assert drawn and set(drawn) <= {i + 1 for i in _nucleus(going_on)}
    # mid-clause: the end at 0.05 is outside the nucleus (0.75 is more likely than it), cut both ways
    mid_clause = [0.05, 0.75, 0.2]
    assert _draw(mid_clause, end_id=None)[0] == _draw(mid_clause, end_id=0)[0] == 0


def test_bfloat16_weights_generate_the_same_kind_of_copy(tiny):
    fast = Generator.load(tiny, device="cpu", batch_size=4, dtype="bfloat16")
    assert next(fast.model.parameters()).dtype == torch.bfloat16
    texts = fast.generate(mixed_requests(), seed=2, max_new_tokens=20)
    assert [len(t) for t in texts] == [r.variants for r in mixed_requests()]
    with pytest.raises(ValueError, match="dtype"):
        Generator.load(tiny, device="cpu", dtype="int3")


def test_without_the_kernel_the_engine_decodes_with_matrix_products(tiny, tmp_path, monkeypatch):
    from trainer.generation import _kernel_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty kernel cache ...
    marker = _kernel_path(32, torch.get_num_threads()).with_suffix(".failed")
    marker.parent.mkdir(parents=True)
    marker.write_text("no C++ compiler")  # ... where the build failed before: it is not tried again
    fallback = Generator.load(tiny, device="cpu", batch_size=4, dtype="float32")
    assert fallback._decoder.attention == "matmul" and fallback._decoder.cache_dtype == torch.float32
    reference = Generator.load(tiny, device="cpu", batch_size=4, dtype="float32", attention="matmul")
    assert fallback.generate(mixed_requests(), seed=3) == reference.generate(mixed_requests(), seed=3)
    assert not list(marker.parent.glob("*.building"))


def test_importing_the_engine_loads_neither_torch_nor_numpy():
    """torch and numpy load with the first model, not with `import trainer.generation`."""
    code = "import sys, trainer.generation; assert not {'torch', 'numpy'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
