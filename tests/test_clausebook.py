"""Decoding from a clause book (trainer.clausebook, trainer/generation/known.py): every clause a row
writes is a clause of the training copy, on a tiny model."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from trainer import clausebook, wordpairs
from trainer.checkpoint import CheckpointError
from trainer.generation import Generator, Request, _attention_kernel, known
from trainer.generation.blocking import _Blocker
from trainer.generation.generator import load_clause_book
from trainer.generation.known import OFF, PAUSED, ROOT, _Book, _KnownClauses
from trainer.testing import tiny_checkpoint

SOURCES = [
    "类型#上衣*颜色#白色*材质#棉*风格#简约",
    "类型#裙*颜色#黑色*裙长#连衣裙*风格#复古",
    "类型#裤*版型#宽松*裤型#阔腿裤*材质#牛仔布",
    "类型#上衣*材质#针织*衣样式#毛衣*颜色#灰色",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    _attention_kernel(32, wait=True)
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", steps=30)


@pytest.fixture(scope="module")
def engine(tiny):
    return Generator.load(tiny, device="cpu", batch_size=4, dtype="float32")


def _clauses(texts) -> list[str]:
    return [c for text in texts for c in wordpairs.clauses(text)]


def _writable_by(book, clause: str, sources: list[str]) -> list[bool]:
    """For each product source: whether its row may write the clause (it meets the clause's facts)."""
    trie = _KnownClauses([[1 + i] for i in range(len(book))], [90], 99, facts=book.facts)
    return [bool(trie.of_facts(clausebook.facts_met(source, trie.fact_names))[book.clauses.index(clause)])
            for source in sources]


# -- the book ------------------------------------------------------------------------------------

def test_the_book_keeps_the_copys_clauses_and_leaves_out_what_names_another_products_claims():
    common = ["polo领的设计，简约大方。"] * clausebook.LATIN_COPIES
    others = ["100%纯棉面料，简约大方。", "veromoda的经典款，简约大方！", "四合扣点缀裤脚，简约大方。", "polo领的的设计，简约大方。",
              "这款衬衫采用了面料设计，更加的简约大方，穿出了属于自己的时尚个性和优雅的气质感觉，让你无论在哪里都是焦点所在"]
    book = clausebook.ClauseBook.collect([("类型#上衣*衣领型#polo领", copy) for copy in common]
                                         + [("类型#裙", copy) for copy in others])
    assert book.clauses == ["polo领的设计", "简约大方"]  # distinct, in the order first written
    assert book.types == [{"上衣"}, {"上衣", "裙"}]  # the garment types whose copy wrote each
    # a digit, a brand (a Latin word too few copies use), a word one product alone has, a typo, a run-on
    assert not {"100%纯棉面料", "veromoda的经典款", "四合扣点缀裤脚", "polo领的的设计"} & set(book.clauses)
    assert not [c for c in book.clauses if len(c) > clausebook.MAX_CHARS]


def test_a_misspelt_collarbone_is_a_typo():
    # "露出迷人的碎骨与香肩" (碎骨 for 锁骨) went to make demo's v-neck dress (2026-12-06, night)
    copies = ["露出迷人的碎骨与香肩，简约大方。", "露出迷人的锁骨与香肩，简约大方。"] * clausebook.WORD_COPIES
    book = clausebook.ClauseBook.collect([("类型#裙*裙领型#v领", copy) for copy in copies])
    assert "露出迷人的锁骨与香肩" in book.clauses
    assert "露出迷人的碎骨与香肩" not in book.clauses


def test_a_word_few_copies_use_keeps_its_clause_only_where_it_names_a_listed_value():
    # 纤腰 ("收紧而系则显纤腰", one writer's tie waist) is what a few products alone have; 小熊 is a
    # value products list, and the clause naming it is for products that state it
    book = clausebook.ClauseBook.collect([("类型#上衣*图案#小熊", "可爱的小熊，简约大方。"),
                                          ("类型#上衣", "收紧显纤腰，简约大方。")]
                                         + [("类型#上衣", "可爱的设计，简约大方。")] * clausebook.WORD_COPIES)
    assert "收紧显纤腰" not in book.clauses
    # (可爱 speaks a register its writer listed no style for: UNSTYLED)
    assert book.facts[book.clauses.index("可爱的小熊")] == (frozenset({"图案#小熊", clausebook.UNSTYLED}),)


def test_a_clause_naming_another_types_garment_is_kept_only_where_it_wears_the_two_together():
    book = clausebook.ClauseBook.collect([
        ("类型#裤*风格#性感", "性感的上衣，搭配性感的上衣，裙裤的版型。"),
        ("类型#裙*裙型#衬衫裙", "衬衫裙的版型，大牌范的上衣。"),
        ("类型#上衣*衣样式#衬衫", "一款连衣裙，这款衬衫。"),
    ] * clausebook.WORD_COPIES)
    assert book.clauses == ["搭配性感的上衣", "裙裤的版型", "衬衫裙的版型", "这款衬衫"]
    assert book.other_garment == 3 * clausebook.WORD_COPIES  # 性感的上衣, 大牌范的上衣, 一款连衣裙
    assert not clausebook.names_another_garment("性感的上衣", "上衣")
    assert not clausebook.names_another_garment("一款连衣裙", "")  # a product of no type: any garment


def test_a_clause_that_leans_on_its_writers_other_clauses_is_left_out():
    book = clausebook.ClauseBook.collect([
        ("类型#上衣*颜色#绿色", "绿色的卫衣，这样的颜色非常的衬肤色，穿在身上，很显白。"),
        ("类型#裙*裙型#百褶", "这款裙子的腰头地方，添加了褶皱，这款裙子。"),
    ] * clausebook.WORD_COPIES)
    assert book.clauses == ["绿色的卫衣", "穿在身上", "很显白", "添加了褶皱", "这款裙子"]
    assert book.leaning == 2 * clausebook.WORD_COPIES  # 这样的颜色..., 这款裙子的腰头地方
    for clause in ("在这种穿多了会热", "黑色的裙身上", "袖口处", "裤脚的设计很特别", "下摆的设计别致又独特", "裤脚独具设计感", "这款连衣裙的面料十分特别",
                   "面料的选择上", "在简约的卫衣上", "这款牛仔裤在传统的猫须磨白的基础上",  # a frame for the next clause
                   "带来了一种裙子的既视感",  # a look of another garment
                   "衬衫的干练", "而且还有些可爱的气息在",  # a quality made a noun, a clause left at 在
                   "这款牛仔裤装并不是直筒型的设计", "棉麻的质感不是透气",  # what the writer's product is not
                   "搭配上裙摆", "这么强的设计感",  # a part joined on bare, a degree pointing back (make demo, 2026-12-06)
                   "不仅因为它可俏皮可通勤", "也因为它能很好地修饰腿型", "因为雪纺材质的运用"):  # its writer's reasons
        assert clausebook.leans_on_context(clause)
    for clause in ("穿在身上", "这款衬衫", "在视觉上拉伸身材比例", "穿着舒适的同时",  # a verb; the product itself
                   "裤脚的设计", "独特的气质",  # a part not called special, nor special of a part
                   "精美刺绣花朵绽放在黑色面料上", "将抹胸融入到连体裤设计中",  # a place something is put
                   "经典与品质同在", "活动自在", "衬衫的干练气质",
                   "加上飘逸裙摆", "让牛仔裙不那么单调", "就是这么迷人"):  # a part with what it is; 那么 as a degree
        assert not clausebook.leans_on_context(clause)


def test_a_clause_describing_a_part_its_writer_states_nothing_of_is_left_out():
    # make demo gave a 翻领 shirt "领口采用了v字造型" and a pocketless denim jacket "前幅运用了个性的贴袋装饰",
    # each written by a product listing no collar or no pocket: what its writer saw and did not list
    book = clausebook.ClauseBook.collect([
        ("类型#上衣*衣样式#衬衫", "领口采用了v字造型，前幅运用了个性的贴袋装饰，修饰脖颈曲线，简约大方。"),
        ("类型#裤*裤款式#抽绳", "裤子的腰身处采用的是抽绳设计。"),
        ("类型#上衣*衣领型#翻领", "领口采用了翻领造型，修饰脸型。"),
        ("类型#上衣*衣款式#口袋", "前幅运用了个性的贴袋装饰。"),
    ] * clausebook.WORD_COPIES)
    assert "领口采用了v字造型" not in book.clauses and "简约大方" in book.clauses
    assert book.unlisted_part == 2 * clausebook.WORD_COPIES  # v字造型 and the shirt's 贴袋, each time written
    facts = dict(zip(book.clauses, book.facts))
    assert facts["领口采用了翻领造型"] == (frozenset({"衣领型#翻领"}),)  # a writer who listed the collar keeps it
    assert facts["前幅运用了个性的贴袋装饰"] == ()  # the pocket's writer listed it: a product needs a pocket (parts)
    assert "修饰脸型" in book.clauses  # the face a collar frames: its writer lists one
    # the neck a collar frames is the body, no part of the writer's garment; a clause naming a value
    # its writer lists (抽绳) holds the products that write it to that value
    assert "修饰脖颈曲线" in book.clauses
    assert facts["裤子的腰身处采用的是抽绳设计"] == (frozenset({"裤款式#抽绳"}),)


def test_a_clause_saying_something_adjusts_is_only_for_products_with_a_part_that_does():
    book = clausebook.ClauseBook.collect([("类型#裙*裙型#百褶", "可以自由调节，百褶的裙摆。")] * clausebook.WORD_COPIES)
    facts = dict(zip(book.clauses, book.facts))
    assert facts["百褶的裙摆"] == (frozenset({"裙型#百褶"}),)
    assert frozenset({"调节#抽绳"}) in facts["可以自由调节"] and frozenset({"调节#背带"}) in facts["可以自由调节"]
    assert _writable_by(book, "可以自由调节", ["类型#裤*裤款式#抽绳", "类型#裙*裙型#背带裙", "类型#裙*裙型#百褶"]) == [
        True, True, False]


def test_a_clause_saying_something_holds_ones_things_is_only_for_products_with_a_pocket():
    # make demo gave a pocketless denim jacket "单排扣的设计，不仅可以放置物品" (2026-12-06)
    book = clausebook.ClauseBook.collect([("类型#上衣*衣款式#口袋", "不仅可以放置物品，口袋的设计。")] * clausebook.WORD_COPIES)
    facts = dict(zip(book.clauses, book.facts))
    assert facts["不仅可以放置物品"] == (frozenset({"收纳#兜"}), frozenset({"收纳#袋"}))  # its writer's 口袋 is not named
    assert _writable_by(book, "不仅可以放置物品", ["类型#上衣*衣款式#口袋", "类型#裤*裤款式#斜插兜",
                                           "类型#上衣*衣门襟#单排扣"]) == [True, True, False]


def test_a_clause_speaking_of_a_child_is_only_for_products_that_name_one():
    # make demo gave light-blue adult jeans "能够彰显孩子可爱气质" (2026-12-06); 女孩子 is a young woman
    book = clausebook.ClauseBook.collect([("类型#裤*风格#可爱", "能够彰显孩子可爱气质，衬托出女孩子柔美的气质。")]
                                         * clausebook.WORD_COPIES)
    facts = dict(zip(book.clauses, book.facts))
    assert frozenset({"风格#可爱", "穿着者#童"}) in facts["能够彰显孩子可爱气质"]
    assert facts["衬托出女孩子柔美的气质"] == (frozenset({"风格#可爱"}),)  # no child; 柔美 is its writer's register
    assert _writable_by(book, "能够彰显孩子可爱气质", ["类型#裤*风格#可爱", "类型#裤*风格#可爱 儿童牛仔裤",
                                              "类型#裤*风格#可爱 宝宝背带裤"]) == [False, True, True]


def test_a_clause_placing_an_elastic_at_an_opening_is_only_for_products_that_name_the_place():
    # its writers listed an elastic waist, which 松紧 names: make demo gave elastic-waist harem trousers
    # "裤腿的松紧口设计" in three jobs of four (2026-12-06)
    book = clausebook.ClauseBook.collect([("类型#裤*裤腰型#松紧腰", "裤腿的松紧口设计，松紧腰的设计，裤脚运用了橡筋收紧。")]
                                         * clausebook.WORD_COPIES)
    facts = dict(zip(book.clauses, book.facts))
    assert facts["裤腿的松紧口设计"] == (frozenset({"裤腰型#松紧腰", "位置#裤腿"}),)
    assert facts["裤脚运用了橡筋收紧"] == (frozenset({"位置#裤脚"}),)
    assert facts["松紧腰的设计"] == (frozenset({"裤腰型#松紧腰"}),)  # at the waist, where its writer's is
    assert clausebook.facts_met("类型#裤*裤腰型#松紧腰*裤型#哈伦裤", ["位置#裤腿"]) == [False]


def test_a_character_few_copies_double_is_a_typo_and_its_clause_is_left_out():
    # "更显腿腿长" (2 references) went to make demo's 小脚 jeans (2026-12-06)
    rare = [("类型#裤*裤口#小脚", "更显腿腿长，满满的活力。")] * (clausebook.DOUBLED_COPIES - 1)
    legs = [("类型#裤", "更显腿长。")] * clausebook.WORD_COPIES  # 腿 and 长 are common characters
    common = [("类型#上衣", "满满的活力，另外外套可以单穿。")] * clausebook.WORD_COPIES
    book = clausebook.ClauseBook.collect(rare + legs + common)
    assert "更显腿腿长" not in book.clauses
    assert "满满的活力" in book.clauses  # doubled by enough copies
    assert "另外外套可以单穿" in book.clauses  # a pair across two words (另外|外套) is no typo
    book = clausebook.ClauseBook.collect(rare * 2 + legs + common)
    assert "更显腿腿长" in book.clauses  # doubled by DOUBLED_COPIES copies


def test_a_character_few_copies_use_leaves_its_clause_out_unless_a_named_value_holds_it(monkeypatch):
    # a brand: "茵曼连衣裙在袖口以及裙摆处融入了荷叶边设计" in the demo book (2026-12-06)
    rare = [("类型#裙*裙长#连衣裙", "茵曼连衣裙，简约大方。")] * (clausebook.CHAR_COPIES - 1)
    common = [("类型#裙", "简约大方，连衣裙的设计。")] * clausebook.WORD_COPIES
    book = clausebook.ClauseBook.collect(rare + common)
    assert "茵曼连衣裙" not in book.clauses  # 茵 and 曼: fewer than CHAR_COPIES copies
    assert "简约大方" in book.clauses
    book = clausebook.ClauseBook.collect(rare + [("类型#裙", "茵曼连衣裙。")] + common)
    assert "茵曼连衣裙" in book.clauses  # CHAR_COPIES copies use them
    # a rare character of a listed value the clause names stays (八 of 八分裤)
    monkeypatch.setattr(clausebook, "CHAR_COPIES", clausebook.WORD_COPIES + 1)
    book = clausebook.ClauseBook.collect([("类型#裤*裤长#八分裤", "八分裤的设计。")] * clausebook.WORD_COPIES + common)
    assert "八分裤的设计" in book.clauses


def test_a_clause_placing_a_pocket_or_a_ruffle_is_only_for_products_that_name_the_place():
    book = clausebook.ClauseBook.collect([("类型#上衣*衣款式#口袋", "胸前的大口袋，口袋的设计。")] * clausebook.WORD_COPIES)
    facts = dict(zip(book.clauses, book.facts))
    assert facts["胸前的大口袋"] == (frozenset({"衣款式#口袋", "位置#胸前"}),)
    assert facts["口袋的设计"] == (frozenset({"衣款式#口袋"}),)
    assert clausebook.facts_met("类型#上衣*衣款式#口袋", ["位置#胸前"]) == [False]
    assert clausebook.facts_met("类型#上衣*衣款式#口袋 胸前贴袋卫衣", ["位置#胸前"]) == [True]  # its title says so
    book = clausebook.ClauseBook.collect([("类型#上衣*衣款式#口袋", "衣身两个侧口袋的设计。")] * clausebook.WORD_COPIES)
    assert book.facts == [(frozenset({"衣款式#口袋", "位置#侧"}),)]  # a pocket at the side
    book = clausebook.ClauseBook.collect([("类型#裙*裙款式#口袋", "侧边有插兜设计，实用。")] * clausebook.WORD_COPIES)
    assert book.facts[0] == (frozenset({"裙款式#口袋", "位置#侧边"}),)  # a 兜 is a pocket too (make demo, 2026-12-06)
    book = clausebook.ClauseBook.collect([("类型#上衣*衣款式#口袋", "胸袋设计，实用。")] * clausebook.WORD_COPIES)
    assert book.facts[0] == (frozenset({"位置#胸"}),)  # and on the chest (胸袋 names no 口袋)
    # a ruffle too: make demo's shirt dress "胸前荷叶边装饰", its listing placing none
    book = clausebook.ClauseBook.collect([("类型#裙*裙款式#荷叶边", "胸前荷叶边装饰，荷叶边的设计。")] * clausebook.WORD_COPIES)
    assert dict(zip(book.clauses, book.facts)) == {"胸前荷叶边装饰": (frozenset({"裙款式#荷叶边", "位置#胸前"}),),
                                                   "荷叶边的设计": (frozenset({"裙款式#荷叶边"}),)}
    # a print too: make demo's printed chiffon top "胸前特色的印花充满艺术气息", its listing placing none
    book = clausebook.ClauseBook.collect([("类型#上衣*图案#印花", "胸前特色的印花充满艺术气息，前身个性印花装饰设计，印花的设计。")]
                                         * clausebook.WORD_COPIES)
    assert dict(zip(book.clauses, book.facts)) == {"胸前特色的印花充满艺术气息": (frozenset({"图案#印花", "位置#胸前"}),),
                                                   "前身个性印花装饰设计": (frozenset({"图案#印花", "位置#前身"}),),
                                                   "印花的设计": (frozenset({"图案#印花"}),)}
    # and lettering: make demo's cotton shirt "胸口的白色字" (2026-12-06, night); a v字领 is no lettering
    book = clausebook.ClauseBook.collect([("类型#上衣*颜色#白色*衣领型#v领", "胸口的白色字，领口采用v字领设计。")]
                                         * clausebook.WORD_COPIES)
    assert dict(zip(book.clauses, book.facts)) == {"胸口的白色字": (frozenset({"颜色#白色", "位置#胸口"}),),
                                                   "领口采用v字领设计": (frozenset({"衣领型#v领"}),)}


def test_each_clause_keeps_the_clauses_that_followed_it_in_a_sentence(tmp_path):
    book = clausebook.ClauseBook.collect([("类型#上衣", "柔软亲肤，简约百搭。修饰身形，简约百搭！"),
                                          ("类型#上衣", "柔软亲肤；遮肉显瘦。")] * clausebook.WORD_COPIES)
    followers = {c: {book.clauses[i] for i in after} for c, after in zip(book.clauses, book.followers)}
    # a comma or ； joins a sentence; its last clause is followed by none
    assert followers == {"柔软亲肤": {"简约百搭", "遮肉显瘦"}, "简约百搭": set(), "修饰身形": {"简约百搭"}, "遮肉显瘦": set()}
    book.save(tmp_path / clausebook.FILE)
    assert clausebook.ClauseBook.load(tmp_path / clausebook.FILE).followers == book.followers
    (tmp_path / clausebook.FILE).write_text("柔软亲肤\t上衣\t\t\n简约百搭\t上衣\t\t\n", encoding="utf-8")  # before followers
    assert clausebook.ClauseBook.load(tmp_path / clausebook.FILE).followers == [(), ()]
    (tmp_path / clausebook.FILE).write_text("柔软亲肤\t上衣\t\t\tsome\n", encoding="utf-8")
    with pytest.raises(ValueError, match="followers' line numbers"):
        clausebook.ClauseBook.load(tmp_path / clausebook.FILE)


def test_each_clause_knows_whether_a_writer_began_a_sentence_with_it(tmp_path):
    book = clausebook.ClauseBook.collect([("类型#上衣", "柔软亲肤，简约百搭。修饰身形，遮肉显瘦！"),
                                          ("类型#上衣", "简约百搭；遮肉显瘦。")] * clausebook.WORD_COPIES)
    starts = dict(zip(book.clauses, book.starts))
    # a copy's first clause and one after a 。！？ begin a sentence; one after a ，or ； does not
    assert starts == {"柔软亲肤": True, "简约百搭": True, "修饰身形": True, "遮肉显瘦": False}
    book.save(tmp_path / clausebook.FILE)
    assert clausebook.ClauseBook.load(tmp_path / clausebook.FILE).starts == book.starts
    (tmp_path / clausebook.FILE).write_text("柔软亲肤\t上衣\t\t\t\n遮肉显瘦\t上衣\t\t\t\n", encoding="utf-8")  # before starts
    assert clausebook.ClauseBook.load(tmp_path / clausebook.FILE).starts == [True, True]  # any may begin one
    (tmp_path / clausebook.FILE).write_text("柔软亲肤\t上衣\t\t\t\tbegins\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'starts' or nothing"):
        clausebook.ClauseBook.load(tmp_path / clausebook.FILE)



def test_an_effect_keeps_the_keys_its_writers_previous_clauses_named(tmp_path):
    # "更显双腿修长" names no value and begins no sentence: an effect of what its writers said before it, a
    # cropped length and a clause naming nothing; "简约大方" began one, and "九分裤的设计" names a value
    book = clausebook.ClauseBook.collect([("类型#裤*裤长#九分裤", "九分裤的设计，更显双腿修长。"),
                                          ("类型#裤*颜色#黑色", "简约大方，更显双腿修长。")] * clausebook.WORD_COPIES)
    subjects = dict(zip(book.clauses, book.subjects))
    assert subjects == {"九分裤的设计": frozenset(), "更显双腿修长": {"裤长", clausebook.NOTHING}, "简约大方": frozenset()}
    book.save(tmp_path / clausebook.FILE)
    assert clausebook.ClauseBook.load(tmp_path / clausebook.FILE).subjects == book.subjects
    (tmp_path / clausebook.FILE).write_text("简约大方\t裤\t\t\t\tstarts\n更显双腿修长\t裤\t\t\t\t\n", encoding="utf-8")
    assert clausebook.ClauseBook.load(tmp_path / clausebook.FILE).subjects == [frozenset()] * 2  # before subjects


def test_an_effect_follows_only_a_clause_naming_a_key_its_writers_previous_clauses_named():
    # 1 2: "九分裤的设计" (裤长), 3 4: "喇叭袖的设计" (衣袖型), 5 6: "简约大方" (nothing), 7 8: "更显双腿修长", an
    # effect written after a length and after a clause naming nothing, 9: one any clause may come before
    comma = 90
    trie = _KnownClauses([[1, 2], [3, 4], [5, 6], [7, 8], [9]], [comma], 99,
                         facts=[(frozenset({"裤长#九分裤"}),), (frozenset({"衣袖型#喇叭袖"}),), (), (), ()],
                         subjects=[frozenset(), frozenset(), frozenset(), frozenset({"裤长", clausebook.NOTHING}),
                                   frozenset()])
    book = _Book(trie, [trie.allowed([])])
    states = np.full(4, PAUSED)
    after = np.array([0, 1, 2, -1])  # after the length, the sleeve, the clause naming nothing, and none
    masked = book.mask(torch.zeros(4, 100), states, np.zeros(4, dtype=np.int64), np.ones(4, dtype=bool), after=after)
    allowed = [torch.isfinite(row).nonzero().ravel().tolist() for row in masked]
    assert allowed == [[1, 3, 5, 7, 9], [1, 3, 5, 9], [1, 3, 5, 7, 9], [1, 3, 5, 7, 9]]
    # an effect that another clause goes on from is left unended, not unentered
    trie = _KnownClauses([[3, 4], [7, 8], [7, 8, 10]], [comma], 99, facts=[(frozenset({"衣袖型#喇叭袖"}),), (), ()],
                         subjects=[frozenset(), frozenset({"裤长"}), frozenset()])
    at = np.array([trie.start([7, 8])])
    masked = _Book(trie, [trie.allowed([])]).mask(torch.zeros(1, 100), at, np.zeros(1, dtype=np.int64),
                                                   np.ones(1, dtype=bool), after=np.array([0]))
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [10]
    # in mid-clause too: a row after the sleeve that other rules (the repeat ban) leave only the effect goes on
    # with it rather than writing freely
    scores = torch.zeros(1, 100)
    scores[0, [1, 3, 5, 9]] = float("-inf")
    masked = book.mask(scores, np.array([PAUSED]), np.zeros(1, dtype=np.int64), np.ones(1, dtype=bool),
                       after=np.array([1]))
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [7] and book.free_clauses == 0


def test_a_clause_that_leaves_a_bujin_open_is_followed_by_one_that_answers_it():
    # "宽松的版型，不仅是打破了这款针织开衫的单调感，选用百搭灰色调装饰" went to make demo's cardigan in 7 of 8 seeded
    # short jobs: 1 2 stands for the 不仅 clause, 3 4 for one saying 还 (更, 也...), 5 6 for one saying neither
    comma = 90
    trie = _KnownClauses([[1, 2], [3, 4], [5, 6]], [comma], 99)
    trie.leaves_open[:] = [True, False, False]
    trie.answers[:] = [False, True, False]
    book = _Book(trie, [trie.allowed([])])
    after = np.array([0, 1, 2, -1])
    masked = book.mask(torch.zeros(4, 100), np.full(4, PAUSED), np.zeros(4, dtype=np.int64), np.ones(4, dtype=bool),
                       after=after)
    allowed = [torch.isfinite(row).nonzero().ravel().tolist() for row in masked]
    assert allowed == [[3], [1, 3, 5], [1, 3, 5], [1, 3, 5]]
    # a row the answering clauses are closed to (the repeat ban) goes on with any clause of its book
    scores = torch.zeros(1, 100)
    scores[0, 3] = float("-inf")
    masked = book.mask(scores, np.array([PAUSED]), np.zeros(1, dtype=np.int64), np.ones(1, dtype=bool), after=np.array([0]))
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [1, 5] and book.free_clauses == 0


def test_a_row_begins_a_sentence_only_with_a_clause_a_writer_began_one_with(engine, monkeypatch):
    # trainer.testing's copies are one sentence each: only their first clauses began one
    forced = forced_toward(engine, "简")  # writes 简 wherever it may: 简约的版型百搭又显瘦, a clause in mid-sentence
    request = Request("类型#上衣*颜色#白色*材质#棉*风格#简约", variants=3, opening="柔软亲肤。")
    sample = {"seed": 3, "max_new_tokens": 13, "known_clauses": True}
    assert forced.generate([request], **sample) == [["柔软亲肤。这款白色上衣采用纯棉面料，"] * 3]
    after_comma = Request("类型#上衣*颜色#白色*材质#棉*风格#简约", variants=3, opening="柔软亲肤，")
    assert all(t.startswith("柔软亲肤，简约的版型百搭又显瘦") for t in forced.generate([after_comma], **sample)[0])
    # a product that states the facts of no clause a writer began a sentence with begins one of its others
    untyped = Request("颜色#白色", variants=3, opening="柔软亲肤。")
    book = set(engine.clause_book.clauses)
    assert all(wordpairs.clauses(t)[1] in book for t in forced.generate([untyped], **sample)[0])


def _forced_with_book(engine, token: str, book: clausebook.ClauseBook) -> Generator:
    forced = forced_toward(engine, token)
    return Generator(forced.model, engine.tokenizer, engine.manifest, "cpu", batch_size=4, clause_book=book)


def test_the_clause_after_a_connective_alone_is_one_a_writer_began_a_sentence_with(engine, monkeypatch):
    # make demo wrote "而且，衬托出女孩子柔美的气质": an effect with nothing to qualify after 而且. The tiny
    # model's characters have no connective: 活力满满 stands in for one.
    monkeypatch.setattr(known, "CONNECTIVES", frozenset({"活力满满"}))
    book = clausebook.ClauseBook([("柔软亲肤", ("上衣",)), ("活力满满", ("上衣",)), ("简约的版型百搭又显瘦", ("上衣",)),
                                  ("这款白色上衣采用纯棉面料", ("上衣",))],
                                 starting={"柔软亲肤", "活力满满", "这款白色上衣采用纯棉面料"})
    forced = _forced_with_book(engine, "简", book)  # writes 简 wherever it may: the clause no sentence began with
    sample = {"seed": 3, "max_new_tokens": 12, "known_clauses": True}
    source = "类型#上衣*颜色#白色*材质#棉*风格#简约"
    after_comma = forced.generate([Request(source, variants=3, opening="柔软亲肤，")], **sample)[0]
    assert all(t.startswith("柔软亲肤，简约的版型百搭又显瘦") for t in after_comma)
    after_connective = forced.generate([Request(source, variants=3, opening="柔软亲肤，活力满满，")], **sample)[0]
    assert all(wordpairs.clauses(t)[2] in {"柔软亲肤", "活力满满", "这款白色上衣采用纯棉面料"} for t in after_connective)
    marks = {engine.tokenizer.convert_tokens_to_ids(m) for m in "，。"}
    trie = _KnownClauses.from_book(book, engine.tokenizer, marks, engine.eos_id)
    assert trie.connective.tolist() == [False, True, False, False]
    assert trie.begins(np.array([PAUSED, PAUSED, ROOT]), np.array([0, 1, -1])).tolist() == [False, True, True]


def test_a_row_writes_an_effect_only_after_a_clause_naming_a_key_its_writers_previous_clauses_named(engine):
    # make demo credited a flared cuff with long legs: "简约的版型百搭又显瘦" stands in for the effect
    entries = [("这款白色上衣采用纯棉面料", ("上衣",), {"颜色#白色"}), ("柔软亲肤", ("上衣",), set()),
               ("简约的版型百搭又显瘦", ("上衣",), set())]
    request = Request("类型#上衣*颜色#白色*材质#棉*风格#简约", variants=3, opening="这款白色上衣采用纯棉面料，")
    sample = {"seed": 3, "max_new_tokens": 12, "known_clauses": True}
    for subjects, written in (({"颜色"}, "简约的版型百搭又显瘦"), ({"材质"}, "柔软亲肤")):
        book = clausebook.ClauseBook(entries, starting={"这款白色上衣采用纯棉面料", "柔软亲肤"},
                                     subjects={"简约的版型百搭又显瘦": subjects})
        forced = _forced_with_book(engine, "简", book)  # writes 简 wherever it may
        assert [wordpairs.clauses(t)[1] for t in forced.generate([request], **sample)[0]] == [written] * 3


def test_a_row_is_led_toward_a_clause_that_writes_a_value_it_has_not_written(engine, monkeypatch):
    # make demo's grey and off-white cardigan named its colour in 4 of 192 candidates: no clause of its
    # book begins with 灰, so the nudge on 灰 never met a row that could write it. 纯棉 here: no clause
    # begins with 纯, one holds it.
    book = clausebook.ClauseBook([("柔软亲肤", ("上衣",)), ("活力满满", ("上衣",)), ("这款白色上衣采用纯棉面料", ("上衣",)),
                                  ("简约的版型百搭又显瘦", ("上衣",))])
    forced = _forced_with_book(engine, "活", book)  # writes 活 wherever it may: 活力满满
    request = Request("类型#上衣*颜色#白色*材质#棉*风格#简约", variants=3, wanted=(("纯棉",),))
    sample = {"seed": 3, "max_new_tokens": 20, "known_clauses": True, "nudge": (30.0, 30.0)}
    monkeypatch.setattr(known, "LEAD_BONUS", 0.0)
    alone = forced.generate([request], **sample)[0]
    assert all(t.startswith("活力满满") for t in alone), alone  # the nudge alone
    monkeypatch.setattr(known, "LEAD_BONUS", 100.0)  # stronger than the forcing
    led = forced.generate([request], **sample)[0]
    assert all(t.startswith("这款白色上衣采用纯棉面料") for t in led), led
    assert all("活力满满" in t for t in led), led  # once 纯棉 is written, the row is led no more
    assert all(t.startswith("活力满满") for t in forced.generate([replace(request, wanted=())], **sample)[0])


def test_a_clause_naming_a_garment_alone_begins_nothing_and_with_a_this_a_sentence(engine):
    # "背带裙，休闲舒适，背带牛仔裙，可以随意系结", "而且，连衣裙，增添了甜美浪漫的气息": fragments; and, opening
    # the copy, "针织布上衣，宽松的版型，…" (make demo's knit cardigan in eight seeded jobs of eight, 2026-12-06)
    book = clausebook.ClauseBook([("柔软亲肤", ("上衣",)), ("白色上衣", ("上衣",)), ("这款白色上衣", ("上衣",)),
                                  ("简约百搭", ("上衣",))],
                                 starting={"柔软亲肤", "白色上衣", "这款白色上衣", "简约百搭"})
    sample = {"seed": 3, "max_new_tokens": 8, "known_clauses": True}
    source = "类型#上衣*颜色#白色*材质#棉*风格#简约"

    def second_clauses(token, opening):
        texts = _forced_with_book(engine, token, book).generate([Request(source, variants=3, opening=opening)], **sample)[0]
        return {wordpairs.clauses(t)[len(wordpairs.clauses(opening))] for t in texts}

    assert "白色上衣" not in second_clauses("白", "")  # the copy's start: no bare name...
    assert second_clauses("这", "") == {"这款白色上衣"}  # ... one with 这款
    assert "白色上衣" not in second_clauses("白", "柔软亲肤。")  # a sentence's start: no bare name...
    assert second_clauses("这", "柔软亲肤。") == {"这款白色上衣"}  # ... one with 这款
    assert not {"白色上衣", "这款白色上衣"} & second_clauses("这", "柔软亲肤，")  # mid-sentence: neither
    assert not {"白色上衣", "这款白色上衣"} & second_clauses("白", "柔软亲肤，")
    marks = {engine.tokenizer.convert_tokens_to_ids(m) for m in "，。"}
    trie = _KnownClauses.from_book(book, engine.tokenizer, marks, engine.eos_id)
    assert trie.garment_name.tolist() == [False, True, True, False]
    assert trie.bare_name.tolist() == [False, True, False, False]
    assert [c for c in ("背带裙", "这款卫衣", "简约半身裙", "这款裙子", "搭配牛仔裤", "保暖不撞衫", "简约百搭", "穿着舒适的衬衫面料")
            if known._names_a_garment_alone(c)] == ["背带裙", "这款卫衣", "简约半身裙", "这款裙子"]


def test_a_clause_the_stutter_ban_would_stop_in_is_no_clause_of_the_trie(engine):
    # "这款休闲裤休闲感十足": the ban on 休闲 written again one token apart stopped make demo's harem trousers
    # at 这款休闲裤休, and the row wrote on freely ("这款休闲裤休哈伦裤…")
    book = clausebook.ClauseBook([("柔软亲肤", ("上衣",)), ("休闲裤休闲感十足", ("裤",)), ("穿着舒适舒适", ("上衣",))])
    marks = {engine.tokenizer.convert_tokens_to_ids(m) for m in "，。"}
    trie = _KnownClauses.from_book(book, engine.tokenizer, marks, engine.eos_id)
    assert [engine.tokenizer.decode(row[row >= 0].tolist()).replace(" ", "") for row in trie.ids] == ["柔软亲肤"]


def test_a_row_goes_on_with_the_sentence_its_last_clauses_writer_wrote(engine, monkeypatch):
    forced = forced_toward(engine, "活")  # writes 活 wherever it may: 活力满满, the hoodie's clause
    # (活力 speaks a register its writer listed no style for: the product lists none either)
    request = Request("类型#上衣*颜色#白色*材质#棉", variants=3, opening="这款白色上衣采用纯棉面料，")
    sample = {"seed": 3, "max_new_tokens": 5, "known_clauses": True}
    monkeypatch.setattr(known, "FOLLOW_BONUS", 0.0)
    assert [wordpairs.clauses(t)[1] for t in forced.generate([request], **sample)[0]] == ["活力满满"] * 3
    monkeypatch.setattr(known, "FOLLOW_BONUS", 100.0)  # stronger than the forcing: its writer's 柔软亲肤 follows
    assert forced.generate([request], **sample) == [["这款白色上衣采用纯棉面料，柔软亲肤，"] * 3]


def test_a_row_that_has_named_the_product_begins_no_clause_that_names_it_again(engine, monkeypatch):
    forced = forced_toward(engine, "这")  # writes 这 wherever it may: 这款白色上衣采用纯棉面料 is the book's only clause with 这
    request = Request("类型#上衣*颜色#白色*材质#棉*风格#简约", variants=3, opening="这款，")  # the product named
    sample = {"seed": 3, "max_new_tokens": 12, "known_clauses": True, "no_repeat_ngram": 4}
    book = set(engine.clause_book.clauses)
    texts = forced.generate([request], **sample)[0]
    assert all(wordpairs.clauses(t)[1] in book and "这" not in wordpairs.clauses(t)[1] for t in texts)
    # before: the row began 这款白色上衣..., the named-once ban barred its 款 and it wrote on freely
    mask = _Book.mask
    monkeypatch.setattr(_Book, "mask", lambda book, *args: mask(book, *args[:5]))  # named left out
    texts = forced.generate([request], **sample)[0]
    assert all(wordpairs.clauses(t)[1].startswith("这") and wordpairs.clauses(t)[1] not in book for t in texts)


def test_a_clause_drawn_again_does_not_enter_the_book_prefix_the_repeat_ban_closed(engine, monkeypatch):
    # make demo's pinafore: after "背带裙的版型", the ban closed 背带裙的, and a row beginning a sentence
    # with 背带裙 wrote "背带裙，" freely in every draw. Here, forced toward 的: after 简约的版型，, the
    # second 简约的 has its 版 banned, and the row has 简约百搭 to go to.
    book = clausebook.ClauseBook([("简约的版型", ("上衣",)), ("简约百搭", ("上衣",))],
                                 starting={"简约的版型", "简约百搭"})
    forced = _forced_with_book(engine, "的", book)
    with torch.no_grad():  # and, less, toward ，: a free clause ends once the ban stops 的的的的
        forced.model.lm_head.weight[engine.tokenizer.convert_tokens_to_ids("，"), 0] = 0.5
    request = Request("类型#上衣*颜色#白色*材质#棉*风格#简约", variants=3)
    sample = {"seed": 3, "max_new_tokens": 16, "known_clauses": True, "no_repeat_ngram": 4}
    texts = forced.generate([request], **sample)[0]
    assert all(wordpairs.clauses(t)[:2] == ["简约的版型", "简约百搭"] for t in texts), texts
    # before: the dead end was entered again in every draw, and the row wrote on freely from 简约的
    mask = _Book.mask
    monkeypatch.setattr(_Book, "mask", lambda book, *args: mask(book, *args[:7]))  # dead left out
    texts = forced.generate([request], **sample)[0]
    assert all(wordpairs.clauses(t)[1].startswith("简约的") and wordpairs.clauses(t)[1] not in book.clauses
               for t in texts), texts


def test_the_book_survives_saving_and_a_missing_file_is_refused(tmp_path):
    book = clausebook.ClauseBook([("柔软亲肤", ("上衣", "裙")), ("简约的版型百搭又显瘦", ())])
    book.save(tmp_path / clausebook.FILE)
    again = load_clause_book(tmp_path, {"clauses": {"clauses": 2}})
    assert again.clauses == book.clauses and again.types == [{"上衣", "裙"}, set()]
    assert load_clause_book(tmp_path, {}) is None  # a checkpoint saved before clause books
    (tmp_path / clausebook.FILE).write_text("柔软亲肤\n", encoding="utf-8")  # no types
    with pytest.raises(CheckpointError, match="clauses.txt is missing or unreadable"):
        load_clause_book(tmp_path, {"clauses": {"clauses": 2}})
    (tmp_path / clausebook.FILE).unlink()
    with pytest.raises(CheckpointError, match="clauses.txt is missing or unreadable"):
        load_clause_book(tmp_path, {"clauses": {"clauses": 2}})


def test_training_saves_the_clauses_of_its_copy_in_the_checkpoint(tiny):
    manifest = json.loads((tiny / "copygen.json").read_text(encoding="utf-8"))
    book = load_clause_book(tiny, manifest)
    assert manifest["clauses"]["clauses"] == len(book) > 0
    assert manifest["clauses"]["facts"] == sum(bool(f) for f in book.facts) > 0
    assert manifest["clauses"]["torn"] == 0  # make demo retrains a book whose manifest counts none
    assert manifest["clauses"]["other_garment"] == 0  # ... nor a count of clauses naming another type's garment
    assert manifest["clauses"]["leaning"] == 0  # ... nor one of clauses leaning on their writer's others
    assert manifest["clauses"]["unlisted_part"] == 0  # ... nor one of clauses describing a part no listing states
    assert manifest["clauses"]["followed"] == sum(bool(f) for f in book.followers) > 0  # ... nor one of followed clauses
    assert manifest["clauses"]["word_copies"] == clausebook.WORD_COPIES  # ... nor the copies a word needs
    assert manifest["clauses"]["doubled_copies"] == clausebook.DOUBLED_COPIES  # ... nor those a doubled character needs
    assert manifest["clauses"]["char_copies"] == clausebook.CHAR_COPIES  # ... nor those a character needs
    # ... nor one of clauses speaking a register, for their writers' styles (make demo retrains a book without it)
    assert manifest["clauses"]["styled"] > 0
    assert any(fact.startswith("风格#") for ways in book.facts for way in ways for fact in way)
    assert manifest["clauses"]["starting"] == sum(book.starts) > 0  # ... nor the clauses that began a sentence
    # ... nor one of effects, with the keys their writers' previous clauses named (make demo retrains a book without it)
    assert manifest["clauses"]["effects"] == sum(bool(keys) for keys in book.subjects) > 0
    assert {"这款白色上衣采用纯棉面料", "柔软亲肤", "遮肉显腿长"} <= set(book.clauses)  # trainer.testing's copy


def test_each_clause_keeps_the_facts_it_says_of_the_products_whose_copy_wrote_it():
    black = "类型#上衣*颜色#黑色*风格#休闲"
    book = clausebook.ClauseBook.collect(
        [(black, "黑色的衣身，休闲的黑色款式，柔软亲肤。")] * clausebook.WORD_COPIES
        + [(black + "*材质#棉", "休闲的黑色款式，柔软亲肤。"), ("类型#上衣*颜色#白色", "柔软亲肤。"),
           ("类型#裙*裙长#连衣裙", "黑色的衣身。")])
    facts = dict(zip(book.clauses, book.facts))
    # the smallest set of each writer's facts the clause says; 棉 is its writer's but not in the clause
    assert facts["休闲的黑色款式"] == (frozenset({"颜色#黑色", "风格#休闲"}),)
    assert facts["柔软亲肤"] == ()  # it says nothing of any writer's values: any product's
    # the dress's listing has no colour, yet its copy says black: the clause still says 黑色
    assert facts["黑色的衣身"] == (frozenset({"颜色#黑色"}),)


def test_a_clause_speaking_a_register_is_for_products_of_one_of_its_writers_styles():
    # one writer's "裤子整体透露出稳重内敛的设计感" went to three of make demo's four trousers (2026-12-06)
    book = clausebook.ClauseBook.collect(
        [("类型#裤*风格#简约*风格#职场", "裤子整体透露出稳重内敛的设计感，穿着舒适。")] * clausebook.WORD_COPIES
        + [("类型#裤", "穿着舒适，简约大方。")] * clausebook.WORD_COPIES
        + [("类型#裤", "优雅大方，穿着舒适。")] * clausebook.WORD_COPIES)
    facts = dict(zip(book.clauses, book.facts))
    assert set(facts["裤子整体透露出稳重内敛的设计感"]) == {frozenset({"风格#简约"}), frozenset({"风格#职场"})}
    assert facts["穿着舒适"] == ()  # no register: any product's
    # its writers listed no style: a product's that lists none (it went to make demo's sexy trousers, 2026-12-06)
    assert facts["优雅大方"] == (frozenset({clausebook.UNSTYLED}),)
    sources = ["类型#裤*风格#职场", "类型#裤*风格#休闲", "类型#裤"]
    assert _writable_by(book, "裤子整体透露出稳重内敛的设计感", sources) == [True, False, False]
    assert _writable_by(book, "优雅大方", sources) == [False, False, True]
    assert _writable_by(book, "穿着舒适", sources) == [True, True, True]
    assert book.styled == 1


def test_a_clause_naming_a_value_its_writer_did_not_list_is_only_for_products_that_name_it():
    dress, coat = "类型#裙*裙长#连衣裙", "类型#上衣*衣样式#风衣*衣长#中长款"
    book = clausebook.ClauseBook.collect(
        [(dress, "采用中长的版型设计，拉长下半身比例，进一步展现优雅。")] * clausebook.WORD_COPIES
        + [(coat, "中长款的风衣。"), ("类型#裙*裙长#半身裙*裙型#一步裙", "这款半身裙。")])
    facts = dict(zip(book.clauses, book.facts))
    # make demo gave a dress of no stated length 中长的版型: its writer saw a length it did not list
    assert facts["采用中长的版型设计"] == (frozenset({"衣长#中长款"}),)
    assert clausebook.facts_met(coat, ["衣长#中长款"]) == [True]
    assert clausebook.facts_met(dress, ["衣长#中长款"]) == [False]
    # 下半身 is no 半身裙, 进一步 no 一步裙: these stay any product's (优雅 speaks a register its writer listed
    # no style for: a product's listing none)
    assert facts["拉长下半身比例"] == () and facts["进一步展现优雅"] == (frozenset({clausebook.UNSTYLED}),)


def test_a_clause_ending_on_a_word_people_rarely_end_a_sentence_on_is_marked_continuing(tmp_path):
    n = clausebook.ENDING_SEEN
    book = clausebook.ClauseBook.collect(
        [("类型#裤", "腰部抽绳的设计，简约大方。")] * n + [("类型#裤", "简约的设计。")]
        + [("类型#裤", "简约大方，彰显气质。")] * n)
    ends = dict(zip(book.clauses, book.ends))
    # 设计 ends a sentence in 1 of its 31 clauses (3%): both clauses ending on it continue
    assert ends == {"腰部抽绳的设计": False, "简约大方": True, "简约的设计": False, "彰显气质": True}
    book.save(tmp_path / clausebook.FILE)
    again = load_clause_book(tmp_path, {"clauses": {"clauses": 4}})
    assert again.ends == book.ends
    (tmp_path / clausebook.FILE).write_text("简约的设计\t裤\t\tmaybe\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="'continues' or nothing"):
        load_clause_book(tmp_path, {"clauses": {"clauses": 1}})


def test_a_clause_that_lost_a_character_to_unk_is_left_out_unless_another_copy_wrote_it_whole():
    source = "类型#上衣*风格#休闲"
    book = clausebook.ClauseBook.collect(
        [(source, "让你在中也能自由出行，穿着舒适。", ("让你在中也能自由出行",))] * clausebook.WORD_COPIES
        + [(source, "穿着舒适，透气。", ("透气",))] + [(source, "透气，好穿。")] * clausebook.WORD_COPIES
        + [(source, "好穿，穿着")] * clausebook.WORD_COPIES)  # a copy cut off: its last clause is torn too
    assert book.clauses == ["穿着舒适", "透气", "好穿"]  # 人群 was lost from the first: a torn clause
    assert book.torn == 2 * clausebook.WORD_COPIES + 1  # each time a copy wrote one, as the manifest counts them


def test_a_clauses_facts_survive_saving_and_a_book_saved_without_them_puts_no_condition(tmp_path):
    book = clausebook.ClauseBook([("黑色的衣身", ("上衣",), {"颜色#黑色"}), ("黑色的衣身", ("裙",), {"颜色#黑色", "风格#简约"}),
                                  ("休闲的款式", ("上衣",), {"风格#休闲"}), ("休闲的款式", ("上衣",), {"风格#运动"}),
                                  ("柔软亲肤", ("上衣",))])
    assert book.facts == [(frozenset({"颜色#黑色"}),), (frozenset({"风格#休闲"}), frozenset({"风格#运动"})), ()]
    book.save(tmp_path / clausebook.FILE)
    again = load_clause_book(tmp_path, {"clauses": {"clauses": 3}})
    assert again.facts == book.facts and again.types == book.types
    (tmp_path / clausebook.FILE).write_text("黑色的衣身\t上衣\n", encoding="utf-8")  # the first books had no facts
    assert load_clause_book(tmp_path, {"clauses": {"clauses": 1}}).facts == [()]
    (tmp_path / clausebook.FILE).write_text("黑色的衣身\t上衣\t{\"颜色\": 1}\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="key#value facts"):
        load_clause_book(tmp_path, {"clauses": {"clauses": 1}})


def test_a_product_meets_the_facts_its_values_title_or_description_state():
    source = "简约衬衫 | 类型#上衣*颜色#米白色*材质#纯棉 | 通勤百搭"
    facts = ["颜色#白色", "材质#棉", "风格#简约", "风格#通勤", "颜色#黑色", "材质#牛仔布", "类型#上衣"]
    assert clausebook.facts_met(source, facts) == [True, True, True, True, False, False, True]
    assert clausebook.facts_met("类型#裤*颜色#黑色", ["颜色#黑色", "颜色#白色"]) == [True, False]
    assert clausebook.facts_met("黑色 #1 长裤", ["颜色#黑色"]) == [True]  # a title with a # in it is no attribute
    assert clausebook.source_attributes("颜色#　 | 黑色长裤") == ({}, "颜色#　 黑色长裤")  # a blank value: text


# -- the trie ------------------------------------------------------------------------------------

def test_the_trie_allows_what_continues_a_clause_a_mark_where_one_ends_and_the_end_only_after_a_mark():
    marks, eos = [90, 91], 99
    trie = _KnownClauses([[1, 2, 3], [1, 2], [4, 5]], marks, eos)
    allowed = [trie.allowed([])]
    scores = torch.zeros(4, 100)
    states = np.array([ROOT, trie.start([1]), trie.start([1, 2]), trie.start([7])])
    masked, stuck = trie.mask(scores, states, np.zeros(4, dtype=np.int64), allowed, np.ones(4, dtype=bool))
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [1, 4, eos]
    assert torch.isfinite(masked[1]).nonzero().ravel().tolist() == [2]
    assert torch.isfinite(masked[2]).nonzero().ravel().tolist() == [3, *marks]  # 1 2 is a clause; 1 2 3 goes on
    assert states[3] == OFF and torch.isfinite(masked[3]).all()  # off the book: free until its next mark
    assert len(stuck) == 0
    assert trie.advance(states, np.array([4, 2, 90, 91])).tolist() == [trie.start([4]), trie.start([1, 2]), ROOT, ROOT]
    # an empty book (a training copy whose every clause was left out) allows the root alone
    assert [int(ok.sum()) for ok in _KnownClauses([], marks, eos).allowed([])] == [1, 0, 0]


def test_a_continuing_clause_takes_a_comma_never_a_full_stop_and_the_copy_ends_only_after_a_full_stop():
    comma, stop, semicolon, eos = 90, 91, 92, 99
    # 1 2 ends sentences; 4 5 is one people continue (阔腿裤的版型，)
    trie = _KnownClauses([[1, 2], [4, 5]], [comma, stop, semicolon], eos, ends=[True, False],
                         sentence_mark_ids={stop, semicolon}, end_mark_ids={stop})
    allowed = [trie.allowed([])]
    states = np.array([trie.start([1, 2]), trie.start([4, 5]), trie.start([4, 5, comma]), trie.start([1, 2, stop]),
                       trie.start([1, 2, semicolon])])
    masked, _ = trie.mask(torch.zeros(5, 100), states, np.zeros(5, dtype=np.int64), allowed, np.ones(5, dtype=bool))
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [comma, stop, semicolon]
    assert torch.isfinite(masked[1]).nonzero().ravel().tolist() == [comma]  # no 。 nor ；: "黑色的设计；"
    assert states[2] == PAUSED and torch.isfinite(masked[2]).nonzero().ravel().tolist() == [1, 4]  # no end after a comma
    assert states[3] == ROOT and torch.isfinite(masked[3]).nonzero().ravel().tolist() == [1, 4, eos]
    assert states[4] == PAUSED  # nor after a semicolon
    # a book saved before the mark: any clause may end a sentence
    old = _KnownClauses([[1, 2], [4, 5]], [comma, stop], eos, sentence_mark_ids={stop})
    masked, _ = old.mask(torch.zeros(1, 100), np.array([old.start([4, 5])]), np.zeros(1, dtype=np.int64),
                         [old.allowed([])], np.ones(1, dtype=bool))
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [comma, stop]


def test_a_clause_with_a_blocked_phrase_leaves_the_book_for_rows_that_block_it():
    trie = _KnownClauses([[1, 2, 3], [1, 5], [4, 5]], [90], 99)
    blocker = _Blocker({(2,): {3}, (): {4}}, [], 100, "cpu")  # bans 2 3, and 4 alone
    node_ok, end_ok, _ = trie.allowed([trie.passing(blocker)])
    assert node_ok[trie.start([1, 5])] and end_ok[trie.start([1, 5])]
    assert not node_ok[trie.start([1, 2])] and not node_ok[trie.start([4])]
    assert node_ok[trie.start([1])]  # still on the path of 1 5


def test_a_clause_is_a_products_where_it_meets_the_facts_of_one_of_its_writers():
    a, b, c = frozenset({"颜色#黑色"}), frozenset({"颜色#黑色", "风格#休闲"}), frozenset({"风格#运动"})
    trie = _KnownClauses([[1], [2], [3], [4]], [90], 99, facts=[(), (a,), (b, c), (c,)])
    assert trie.fact_names == ["颜色#黑色", "风格#休闲", "风格#运动"] or sorted(trie.fact_names) == trie.fact_names
    met = {"颜色#黑色": True, "风格#休闲": False, "风格#运动": True}
    assert trie.of_facts([met[f] for f in trie.fact_names]).tolist() == [True, True, True, True]
    met = {"颜色#黑色": True, "风格#休闲": False, "风格#运动": False}
    assert trie.of_facts([met[f] for f in trie.fact_names]).tolist() == [True, True, False, False]
    assert trie.of_facts([False] * 3).tolist() == [True, False, False, False]
    assert _KnownClauses([[1], [2]], [90], 99).of_facts([]).tolist() == [True, True]  # a book without facts


def test_a_row_its_book_leaves_no_token_writes_freely_and_is_counted():
    trie = _KnownClauses([[1, 2]], [90], 99)
    scores = torch.zeros(1, 100)
    scores[0, 2] = float("-inf")  # another rule (the repeat ban) bans the only way on
    masked, stuck = trie.mask(scores, np.array([trie.start([1])]), np.zeros(1, dtype=np.int64),
                              [trie.allowed([])], np.ones(1, dtype=bool))
    assert stuck.tolist() == [0] and torch.equal(masked, scores)


def test_a_row_enters_none_of_the_paths_its_earlier_draws_were_left_no_token_on():
    trie = _KnownClauses([[1, 2], [1, 3], [1, 4]], [90], 99)
    at = np.array([trie.start([1])])
    dead = np.array([[trie.start([1, 2]), -1, trie.start([1, 3]), -1]])  # two draws, a floor redraw between
    masked, stuck = trie.mask(torch.zeros(1, 100), at, np.zeros(1, dtype=np.int64), [trie.allowed([])],
                              np.ones(1, dtype=bool), dead)
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [4] and not len(stuck)
    # a row left no token avoids the path from the last place it had a choice: another token, or an end
    trie = _KnownClauses([[1, 2, 3, 8], [1, 4], [5, 6, 7], [5, 6]], [90], 99)
    assert trie.branch[trie.start([1, 2, 3, 8])] == trie.start([1, 2])
    assert trie.branch[trie.start([5, 6, 7])] == trie.start([5, 6, 7])  # 5 6 may end a clause
    assert trie.branch[trie.start([5, 6])] == trie.start([5])


def test_a_row_the_repeat_ban_leaves_no_clause_may_still_write_the_mark_that_ends_its_clause():
    trie = _KnownClauses([[1, 2]], [90], 99)
    book = _Book(trie, [trie.allowed([])])
    unbanned = torch.zeros(3, 100)
    unbanned[1, 90] = float("-inf")  # row 1: its blocker bans the mark as well
    scores = unbanned.clone()
    scores[:2, 90] = float("-inf")  # the repeat ban bans the mark after 1 2 ("的设计，" written before)
    scores[2, 2] = float("-inf")  # ... and 2 after 1 in row 2: content, which it never lifts
    states = np.array([trie.start([1, 2]), trie.start([1, 2]), trie.start([1])])
    masked = book.mask(scores, states, np.zeros(3, dtype=np.int64), np.ones(3, dtype=bool), book.marks_of(unbanned))
    assert torch.isfinite(masked[0]).nonzero().ravel().tolist() == [90]  # the mark, despite the ban
    assert states[0] == trie.start([1, 2])
    assert states[1] == OFF and torch.equal(masked[1], scores[1])  # free, under the repeat ban
    assert states[2] == OFF and torch.equal(masked[2], scores[2])
    assert book.free_clauses == 2


# -- the engine ----------------------------------------------------------------------------------

def forced_toward(engine: Generator, token: str) -> Generator:
    """The tiny model, changed to write `token` next whatever came before (as in test_generation_engine)."""
    model = copy.deepcopy(engine.model)
    t = engine.tokenizer.convert_tokens_to_ids(token)
    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
        model.transformer.ln_f.weight[0] = 0.0
        model.transformer.ln_f.bias[0] = 40.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[t, 0] = 1.0
    return Generator(model, engine.tokenizer, engine.manifest, "cpu", batch_size=4, clause_book=engine.clause_book)


def test_every_clause_is_a_clause_of_the_book_even_where_the_model_is_forced_elsewhere(engine):
    book = set(engine.clause_book.clauses)
    requests = [Request(s, variants=4) for s in SOURCES]
    # no repeat ban: six copies' clauses are soon all written once (see the test of a row left no token)
    sample = {"seed": 5, "max_new_tokens": 60, "temperature": 1.3, "top_p": 1.0}
    free = _clauses(t for variants in engine.generate(requests, **sample) for t in variants)
    assert sum(c not in book for c in free) / len(free) > 0.3  # a tiny model garbles many clauses
    known = [t for variants in engine.generate(requests, **sample, known_clauses=True) for t in variants]
    assert all(c in book for t in known for c in wordpairs.clauses(t)[:-1])  # the last may be cut by the budget
    assert sum(len(wordpairs.clauses(t)) > 1 for t in known) > len(known) / 2
    forced = forced_toward(engine, "裤")  # writes 裤裤裤... unchecked
    texts = [t for variants in forced.generate(requests, **sample, known_clauses=True) for t in variants]
    assert all(c in book for text in texts for c in wordpairs.clauses(text)[:-1])
    assert all("裤裤" not in t for t in texts)


def test_a_requests_banned_phrase_takes_its_clauses_out_of_its_book_only(engine):
    requests = [Request(SOURCES[0], variants=6, banned=("百搭", "亲肤")), Request(SOURCES[0], variants=6)]
    sample = {"seed": 7, "max_new_tokens": 80, "temperature": 1.5, "top_p": 1.0}
    banned, free = engine.generate(requests, **sample, known_clauses=True)
    assert not [t for t in banned if "百搭" in t or "亲肤" in t]
    assert any("百搭" in t or "亲肤" in t for t in free)
    book = set(engine.clause_book.clauses)
    assert all(c in book for t in banned for c in wordpairs.clauses(t)[:-1])


def test_a_row_whose_every_clause_is_banned_still_writes_its_copy(engine):
    firsts = sorted({c[0] for c in engine.clause_book.clauses})  # a phrase of one character: every clause's start
    [[text]] = engine.generate([Request(SOURCES[1], banned=tuple(firsts))], seed=1, max_new_tokens=30,
                               known_clauses=True)
    assert text and not any(ch in text for ch in firsts)


def test_a_row_writes_only_clauses_its_own_garment_type_wrote(engine):
    book = engine.clause_book
    kinds = dict(zip(book.clauses, book.types))
    requests = [Request(s, variants=6) for s in SOURCES]
    sample = {"seed": 3, "max_new_tokens": 60, "temperature": 1.5, "top_p": 1.0}
    texts = engine.generate(requests, **sample, known_clauses=True)
    for source, variants in zip(SOURCES, texts):
        kind = source.split("*")[0].removeprefix("类型#")
        assert all(kind in kinds[c] for t in variants for c in wordpairs.clauses(t)[:-1])
    untyped = engine.generate([Request("颜色#白色", variants=6)], **sample, known_clauses=True)
    assert len({k for t in untyped[0] for c in wordpairs.clauses(t)[:-1] for k in kinds[c]}) >= 2  # any type's


def test_a_row_writes_only_clauses_whose_facts_its_product_states(engine):
    book = engine.clause_book
    facts = dict(zip(book.clauses, book.facts))
    assert facts["这款白色上衣采用纯棉面料"] == (frozenset({"颜色#白色", "材质#棉"}),)  # trainer.testing's copy
    stated, grey = SOURCES[0], "类型#上衣*颜色#灰色*衣样式#卫衣"
    sample = {"seed": 3, "max_new_tokens": 60, "temperature": 1.5, "top_p": 1.0}
    white, other = engine.generate([Request(stated, variants=8), Request(grey, variants=8)], **sample,
                                   known_clauses=True)
    written = [c for t in other for c in wordpairs.clauses(t)[:-1]]
    assert written and all(any(all(clausebook.facts_met(grey, sorted(s))) for s in facts[c]) or not facts[c]
                           for c in written)
    assert not [t for t in other if "白色" in t or "纯棉" in t]
    assert any(facts[c] for t in white for c in wordpairs.clauses(t)[:-1])  # its own facts' clauses stay open


def test_a_checkpoint_without_a_book_is_refused_with_a_reason(engine):
    bare = Generator(engine.model, engine.tokenizer, engine.manifest, "cpu", batch_size=4)
    assert bare.generate([Request(SOURCES[0])], seed=1, max_new_tokens=10)  # decodes without one
    with pytest.raises(ValueError, match="has no clause book"):
        bare.generate([Request(SOURCES[0])], seed=1, max_new_tokens=10, known_clauses=True)
