"""Advertising Law terms: found where used, not where an allowed phrase holds them, data validated."""

from __future__ import annotations

import json

import pytest

from copygen.compliance import Lexicon, banned_phrases_for_decoding, load_lexicon, term_rate


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_lexicon()


def test_the_packaged_lexicon_is_versioned_and_every_term_has_a_family(lexicon):
    assert lexicon.version == "2026.12-1"
    assert len(lexicon.terms) == len(set(lexicon.terms)) > 50
    assert {name for name, _ in lexicon.families} >= {"superlative", "first_or_only", "top_grade", "certainty"}
    assert all(lexicon.family_of(term) for term in lexicon.terms)
    assert lexicon.family_of("最佳") == "superlative"
    assert lexicon.family_of("国家级") == "top_grade"
    assert lexicon.family_of("no.1") == "first_or_only"  # any case
    assert lexicon.family_of("好看") is None


@pytest.mark.parametrize("text, found", [
    ("这是今夏最好的选择", ["最好"]),
    ("而且穿上最有气质哦", ["最有"]),  # make demo's cardigan, 2026-12-06 (2026.12-1)
    ("九分裤的版型能很好的展现腿部最纤细的脚踝", ["最纤细"]),
    ("销量第一的衬衫", ["销量第一"]),  # the longest term, not also 第一
    ("国家级品质，顶级面料", ["国家级", "顶级"]),
    ("绝对百搭，最好最好", ["绝对", "最好"]),  # each term once, in order
    ("回头率100%", ["100%"]),
    ("人气top1单品", ["TOP1"]),  # Latin terms in any case, reported as the lexicon spells them
    ("ＮＯ．１的人气", ["NO.1"]),  # full-width forms folded
    ("出游首选，独一无二", ["首选", "独一无二"]),
])
def test_find_reports_the_banned_terms_a_copy_uses(lexicon, text, found):
    assert lexicon.find(text) == found


@pytest.mark.parametrize("text", [
    "第一眼就爱上",
    "第一次穿就离不开",
    "采用100%纯棉面料",
    "百分百的天丝面料",
    "最近很流行的款式",
    "最后一颗纽扣",
    "最初的设计",
    "最终呈现",
    "最好不要机洗",
    "国家级非物质文化遗产苏绣工艺",
    "TOP10榜单",  # TOP1 needs a word edge after the 1
    "No.12号色",
    "高级感满满",  # 高级 is not a term; 最高级 is
])
def test_find_lets_lawful_phrases_through(lexicon, text):
    assert lexicon.find(text) == []


def test_an_allowed_phrase_does_not_hide_a_term_elsewhere_in_the_copy(lexicon):
    assert lexicon.find("第一眼就知道是最好的，100%好评") == ["最好", "100%"]


def test_the_only_flaw_rhetoric_stays_banned(lexicon):
    # Decided in the lexicon: 唯一的缺点 claims the product is otherwise flawless.
    assert lexicon.find("唯一的缺点就是太好看") == ["唯一"]


def test_a_lexicon_built_in_code_masks_its_allowed_phrases_before_searching():
    lexicon = Lexicon(version="t", terms=("第一", "最好"), allow=("第一眼",))
    assert lexicon.find("第一眼") == []
    assert lexicon.find("第一眼看到的第一款") == ["第一"]
    assert lexicon.family_of("第一") is None  # no families given
    assert Lexicon(version="t", terms=()).find("最好") == []


def test_term_rate_is_the_share_of_texts_with_any_term(lexicon):
    assert term_rate(["最好的裙子", "普通的裙子", "第一眼心动"], lexicon) == pytest.approx(1 / 3)
    assert term_rate([], lexicon) == 0.0


def test_banned_phrases_for_decoding_hold_every_term_in_the_spellings_a_model_writes(lexicon):
    phrases = banned_phrases_for_decoding(lexicon)
    assert set(lexicon.terms) <= set(phrases)
    assert {"NO.1", "no.1", "No.1", "TOP1", "top1", "Top1"} <= set(phrases)
    assert len(phrases) == len(set(phrases))


def write(tmp_path, content, name="lexicon.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False),
                    encoding="utf-8")
    return path


def test_a_lexicon_file_given_by_path_is_used(tmp_path):
    path = write(tmp_path, {"version": "x-1", "families": {"f": {"terms": ["爆款"]}}, "allow": {"爆款王": "r"}})
    lexicon = load_lexicon(path)
    assert lexicon.version == "x-1"
    assert lexicon.find("爆款上新") == ["爆款"]
    assert lexicon.find("爆款王") == []


@pytest.mark.parametrize("content, problem", [
    ('{"version": "1", "families": {', "not valid JSON"),
    ({"families": {"f": {"terms": ["最好"]}}}, "'version'"),
    ({"version": "1", "families": {}}, "'families'"),
    ({"version": "1", "families": {"f": {"terms": []}}}, "families.f.terms"),
    ({"version": "1", "families": {"f": {"terms": ["最好", ""]}}}, r"families.f.terms\[1\]"),
    ({"version": "1", "families": {"f": {"terms": ["No.1"]}, "g": {"terms": ["NO.1"]}}},
     "already in family 'f'"),
    ({"version": "1", "families": {"f": {"terms": ["最好"]}}, "allow": [""]}, r"allow\[0\]"),
    ([1, 2], "top level"),
])
def test_a_bad_lexicon_file_is_refused_with_its_name_and_the_problem(tmp_path, content, problem):
    path = write(tmp_path, content)
    with pytest.raises(ValueError, match=problem) as caught:
        load_lexicon(path)
    assert str(path) in str(caught.value)


def test_a_missing_lexicon_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(ValueError, match="cannot be read") as caught:
        load_lexicon(tmp_path / "nope.json")
    assert "nope.json" in str(caught.value)
