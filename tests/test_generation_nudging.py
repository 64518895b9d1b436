"""Decode-time nudging toward a product's own values (trainer/generation/nudging.py), on a tiny model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from copygen.attributes import wanted_phrases
from copygen.catalogue import parse_attributes
from trainer.generation import Generator, Request
from trainer.generation.nudging import AGAIN_PENALTY, ONCE, TWICE, _Nudger, _RequestNudgers
from trainer.testing import tiny_checkpoint

SOURCE = "类型#裙*材质#雪纺*图案#碎花*裙型#a字"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    tiny = tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", steps=60)
    return Generator.load(tiny, device="cpu", batch_size=4, dtype="float32")


def written(text: str, groups) -> list[bool]:
    return [any(p in text for p in phrases) for phrases in groups]


def test_a_strong_nudge_writes_every_wanted_group_in_every_row_and_a_zero_nudge_changes_nothing(engine):
    groups = (("雪纺",), ("碎花", "花朵"), ("针织",))  # tokens of the tiny corpus
    plain = Request(SOURCE, variants=4)
    wanting = replace(plain, wanted=groups)
    sample = {"seed": 5, "max_new_tokens": 40, "temperature": 1.0, "top_p": 0.9}
    before = engine.generate([plain], **sample)[0]
    assert not all(all(written(t, groups)) for t in before)  # the model alone does not write them all
    assert engine.generate([wanting], **sample)[0] == before  # wanted phrases do nothing without a nudge
    nudged = engine.generate([plain, wanting], nudge=(30.0, 30.0), **sample)
    assert nudged[0] == before  # a row that wants nothing is not nudged, whatever shares its batch
    unknown = replace(plain, wanted=(("鬣蜥",),))  # characters the tiny tokenizer does not know
    assert engine.generate([unknown], nudge=(30.0, 30.0), **sample)[0] == before
    assert all(all(written(t, groups)) for t in nudged[1]), nudged[1]


def test_a_group_once_written_is_nudged_no_more(engine):
    # With a bonus no other token can match, a nudged row would write 雪纺 over and over if the
    # bonus outlived the first 雪纺.
    text = engine.generate([Request(SOURCE, variants=3, wanted=(("雪纺",),))], seed=2, max_new_tokens=40,
                           nudge=(30.0, 30.0), greedy=True)[0]
    assert all(t.count("雪纺") == 1 for t in text), text


def test_the_follow_bonus_finishes_a_phrase_the_opening_began_and_blocking_wins_over_a_nudge(engine):
    begun = Request(SOURCE, variants=3, opening="这款雪", wanted=(("雪纺",),))
    follow_only = engine.generate([begun], seed=1, max_new_tokens=20, nudge=(0.0, 40.0))[0]
    assert all(t.startswith("这款雪纺") for t in follow_only), follow_only
    banned = replace(begun, banned=("雪纺",))
    blocked = engine.generate([banned], seed=1, max_new_tokens=20, nudge=(40.0, 40.0))[0]
    assert not [t for t in blocked if "雪纺" in t], blocked


def test_the_nudger_tracks_what_each_slot_wrote_through_overlapping_phrases():
    # and begins a phrase where a written one ends, never inside it: demo copy spliced a product's
    # 文字 and 字母 into 清新文字母
    nudger = _Nudger([[(1, 2)], [(2, 3)], [(5,), (1, 2, 4)]])  # ab, bc, and e or abd
    states, bits = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    for token in (1, 2, 3):  # a b c: writes ab, and bc inside it
        states, bits = nudger.advance(states, bits, np.array([token]))
    assert int(bits[0]) == 0b011
    _, tokens, kind = nudger.bonus(np.array([0]), states, bits)
    assert sorted(tokens[kind == 0].tolist()) == [1, 5]  # the third group's first tokens only
    assert nudger.start([1]) == (nudger.delta[0, 1], 0)
    state, _ = nudger.start([1, 2])
    _, tokens, kind = nudger.bonus(np.array([0]), np.array([state]), np.array([0b001]))
    assert tokens[kind == 1].tolist() == [4]  # a-b continues to abd; the b of a written ab begins no bc
    state, _ = nudger.start([6, 2])  # x b: here b does begin bc
    _, tokens, kind = nudger.bonus(np.array([0]), np.array([state]), np.array([0]))
    assert tokens[kind == 1].tolist() == [3]


def test_a_value_written_twice_costs_its_first_tokens_and_a_longer_phrase_of_it_is_no_second_writing():
    # make demo's loose cardigan said 宽松 five to seven times in its rank-1 copy ("宽松的版型…宽松的廓形…
    # 宽松版型…宽松的衣身设计"), 17 of 160 rank-1 copies named a value three times or more (2026-12-06)
    import torch

    nudger = _Nudger([[(1, 2), (1, 2, 4)], [(5,)]])  # ab or abd; e
    states, bits = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    for token in (1, 2, 4, 9):  # abd: ab goes on to abd, one writing
        states, bits = nudger.advance(states, bits, np.array([token]))
    assert int(bits[0]) == 0b01
    for token in (1, 2):  # ab again: written twice
        states, bits = nudger.advance(states, bits, np.array([token]))
    assert int(bits[0]) & ONCE == 0b01 and int(bits[0]) >> TWICE == 0b01
    _, tokens, kind = nudger.bonus(np.array([0]), states, bits)
    assert tokens[kind == 2].tolist() == [1] and tokens[kind == 0].tolist() == [5]  # a costs; e is still nudged
    assert nudger.start([1, 2, 9, 1, 2])[1] >> TWICE == 0b01  # an opening counts as written copy
    assert nudger.start([1, 2, 4])[1] >> TWICE == 0

    nudgers = _RequestNudgers([nudger], 2.0, 6.0)
    logits = torch.zeros((2, 10))
    written = np.array([int(bits[0]), 0b01], dtype=np.int64)  # twice; once
    out = nudgers.nudge(logits.clone(), np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64), written,
                        np.ones(2, dtype=bool))
    assert out[0, 1].item() == -AGAIN_PENALTY and out[1, 1].item() == 0.0  # only the row that wrote it twice
    assert out[0, 5].item() == out[1, 5].item() == 2.0


def test_wanted_phrases_are_the_words_that_express_each_value_never_one_character_or_excluded():
    attributes = parse_attributes("类型#裤*材质#牛仔布*颜色#白色*裤型#阔腿裤*版型#h")
    groups = wanted_phrases(attributes)
    assert ("丹宁", "牛仔", "牛仔布") in groups and ("阔腿", "阔腿裤") in groups  # 丹宁: its alias
    assert all(len(p) >= 2 for g in groups for p in g)  # 版型#h: no word of two characters
    assert not [g for g in groups if "裤" in g]  # 类型 is the garment word every copy uses


def test_the_worker_nudges_each_product_toward_its_own_values(engine):
    from copygen.attributes import coverage
    from copygen.catalogue import JobSettings, Product
    from copygen.compliance import load_lexicon
    from worker.pipeline import draft_variants

    products = [Product(external_id="1", attributes=parse_attributes("类型#裙*材质#雪纺*图案#碎花")),
                Product(external_id="2", attributes=parse_attributes("类型#上衣*材质#针织*颜色#灰色*衣样式#毛衣"))]

    def rank_one_coverage(nudge):
        drafts = draft_variants(engine, products, JobSettings(variants=2, length="short"), load_lexicon(), seed=4,
                                rounds=0, oversample=2, nudge=nudge)
        return [coverage(row[0].text, p.attributes) for p, row in zip(products, drafts)]

    assert rank_one_coverage((30.0, 30.0)) == [1.0, 1.0]
    assert rank_one_coverage((0.0, 0.0)) != [1.0, 1.0]
