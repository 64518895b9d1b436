"""The variant filters, the score and the ranking (worker/filters.py), with the shipped lexicon."""

from __future__ import annotations

import pytest

from copygen.catalogue import Product
from copygen.compliance import load_lexicon
from trainer import wordpairs
from worker import filters

WHITE_COTTON_TOP = Product("SKU-1", "白色纯棉上衣", "上衣", {"颜色": ["白色"], "材质": ["棉"]})
GOOD = "这款白色上衣采用纯棉面料，柔软亲肤，简约的版型百搭又显瘦，日常通勤或周末出游都很合适。"


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


def test_clean_copy_of_the_right_length_passes(lexicon):
    assert 40 <= len(GOOD) <= 160
    assert filters.check(GOOD, WHITE_COTTON_TOP, lexicon, []) == []


def test_advertising_law_terms_are_flagged_by_name(lexicon):
    text = "全网最好的白色上衣，纯棉面料柔软亲肤，销量第一，简约的版型百搭又显瘦，日常通勤都合适。"
    flags = filters.check(text, WHITE_COTTON_TOP, lexicon, [])
    assert "ad_law:最好" in flags
    assert any(flag.startswith("ad_law:") and "第一" in flag for flag in flags)


def test_allow_listed_phrases_are_not_flagged(lexicon):
    text = "最近很火的白色纯棉上衣，第一眼就被它简约的版型吸引，柔软亲肤，百搭又显瘦，通勤出游都合适。"
    assert not [f for f in filters.check(text, WHITE_COTTON_TOP, lexicon, []) if f.startswith("ad_law:")]


def test_a_colour_the_product_does_not_have_is_a_contradiction(lexicon):
    text = GOOD.replace("白色", "红色")
    assert "contradiction:颜色:红色" in filters.check(text, WHITE_COTTON_TOP, lexicon, [])


def test_a_stated_only_check_flags_each_unstated_word_once_and_the_longest(lexicon):
    text = GOOD.replace("简约的版型", "纯白色的宽松版型，碎花图案")  # no 图案 or 版型 stated
    assert filters.check(text, WHITE_COTTON_TOP, lexicon, []) == []
    flags = filters.check(text, WHITE_COTTON_TOP, lexicon, [], stated_only=True)
    assert sorted(flags) == ["unstated:图案", "unstated:宽松", "unstated:碎花"]  # 纯白色 is its colour; 碎花 not also 花
    dress = Product("SKU-2", "碎花连衣裙", "裙", {"类型": ["裙"], "材质": ["雪纺"], "图案": ["碎花"], "裙长": ["连衣裙"]})
    text = "纯白色的碎花连衣裙，清新甜美，轻盈的面料穿着舒适透气，适合春夏日常穿着出游，搭配一双小白鞋就很好看。"
    # it has no 颜色: the longest, 纯白色, which a print's plain ground no longer opens (2026.12-26)
    assert filters.check(text, dress, lexicon, [], stated_only=True) == ["unstated:纯白色"]
    pink = text.replace("纯白色", "粉红色").replace("小白鞋", "小黑鞋")
    assert filters.check(pink, dress, lexicon, [], stated_only=True) == ["unstated:粉红色"]  # not also 红色


def test_a_stated_only_check_reads_a_family_as_contradictions_does_and_the_products_own_text(lexicon):
    plain = Product("SKU-3", "白色纯棉上衣", "上衣", {"类型": ["上衣"]})  # said in its title, not its attributes
    text = "白色纯棉上衣，绿色环保的面料柔软亲肤，简约的版型百搭又显瘦，日常通勤或周末出游都很合适。"
    assert filters.check(text, plain, lexicon, [], stated_only=True) == []  # 绿色环保 names no colour
    assert filters.check(text.replace("纯棉", "真丝"), plain, lexicon, [], stated_only=True) == ["unstated:真丝"]
    assert filters.check(GOOD, WHITE_COTTON_TOP, lexicon, [], stated_only=True) == []


def test_a_near_copy_of_an_earlier_variant_is_a_near_duplicate(lexicon):
    near = GOOD.replace("周末出游", "周末逛街")
    assert filters.similarity(GOOD, near) >= filters.NEAR_DUPLICATE_JACCARD
    assert "near_duplicate" in filters.check(near, WHITE_COTTON_TOP, lexicon, [GOOD])
    assert "near_duplicate" not in filters.check(near, WHITE_COTTON_TOP, lexicon, [])


def test_different_copy_is_not_a_near_duplicate(lexicon):
    other = "纯棉面料的白色上衣，透气舒适不闷热，落肩设计慵懒随性，搭配牛仔裤或半身裙都能轻松出街。"
    assert filters.similarity(GOOD, other) < filters.NEAR_DUPLICATE_JACCARD
    assert "near_duplicate" not in filters.check(other, WHITE_COTTON_TOP, lexicon, [GOOD])


@pytest.mark.parametrize("text", [
    "白色上衣白色上衣白色上衣，纯棉面料柔软亲肤，简约的版型百搭又显瘦，日常通勤或周末出游都很合适。",
    "纯棉面料柔软亲肤，简约百搭，纯棉面料柔软亲肤，日常通勤或周末出游都很合适，这款白色上衣值得入手。",
])
def test_looping_text_and_repeated_clauses_are_repetition(lexicon, text):
    assert "repetition" in filters.check(text, WHITE_COTTON_TOP, lexicon, [])


def test_length_bounds_follow_the_length_setting(lexicon):
    short_line = "白色纯棉上衣，简约百搭"
    assert filters.check(short_line, WHITE_COTTON_TOP, lexicon, [], length="short") == []
    assert "too_short" in filters.check(short_line, WHITE_COTTON_TOP, lexicon, [], length="medium")
    assert "too_long" in filters.check(GOOD * 2, WHITE_COTTON_TOP, lexicon, [], length="short")
    assert "too_short" in filters.check(GOOD, WHITE_COTTON_TOP, lexicon, [], length="long")


def test_length_bounds_follow_the_models_own_length_buckets(lexicon):
    from copygen.prompt import length_bounds

    edges = (85, 115)  # AdvertiseGen's terciles: its "short" copy is 60-85 characters, not a banner
    assert length_bounds("short", edges) == (4, 106)
    assert length_bounds("medium", edges) == (64, 144)
    assert length_bounds("long", edges) == (86, 288)
    eighty = GOOD + "通勤约会都合适，搭配牛仔裤或半身裙都好看，轻松穿出自在的好心情。"
    assert 40 < len(eighty) < 85  # the model's short bucket
    assert filters.check(eighty, WHITE_COTTON_TOP, lexicon, [], length="short", edges=edges) == []
    assert "too_long" in filters.check(eighty, WHITE_COTTON_TOP, lexicon, [], length="short")  # fixed bounds: 40
    assert filters.length_fit(len(eighty), "short", edges) == 1.0


def test_every_length_has_a_token_budget_above_the_longest_copy_it_accepts(checkpoint):
    from copygen.prompt import LENGTHS, length_bounds
    from trainer.generation import Generator

    generator = Generator.load(checkpoint)
    assert generator.length_edges == tuple(generator.manifest["prompt"]["length_edges"])
    for length in LENGTHS:
        assert generator.token_budget(length) > length_bounds(length, generator.length_edges)[1]


def test_empty_copy_is_flagged_empty_and_nothing_else(lexicon):
    assert filters.check("  \u200b ", WHITE_COTTON_TOP, lexicon, ["x"]) == ["empty"]


def test_an_unknown_length_setting_is_refused_by_name(lexicon):
    with pytest.raises(ValueError, match="length must be one of short, medium, long"):
        filters.check(GOOD, WHITE_COTTON_TOP, lexicon, [], length="huge")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from trainer.testing import tiny_checkpoint

    path = tmp_path_factory.getbasetemp() / "tiny-checkpoint"
    return path if (path / "copygen.json").is_file() else tiny_checkpoint(path)


# -- spliced words (a job with word_pairs) ------------------------------------------------------

def test_a_job_with_word_pairs_flags_two_words_its_training_copy_never_joins(lexicon):
    pairs = wordpairs.WordPairs.count([GOOD, "修饰颈部线条，条纹的图案。"])
    assert filters.check(GOOD, WHITE_COTTON_TOP, lexicon, [], word_pairs=pairs) == []
    spliced = GOOD.replace("柔软亲肤", "修饰颈部线条纹")  # 线条 and 条纹 run together
    flags = filters.check(spliced, WHITE_COTTON_TOP, lexicon, [], word_pairs=pairs)
    assert [f for f in flags if f.startswith("spliced:")] == ["spliced:颈部+线", "spliced:线+条纹", "spliced:条纹+|"]
    assert filters.check(spliced, WHITE_COTTON_TOP, lexicon, []) == []  # a job without word_pairs
