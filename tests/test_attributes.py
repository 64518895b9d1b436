"""Attribute faithfulness: coverage of the product's values, contradictions of its closed keys."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from copygen.attributes import attribute_values, contradictions, coverage, load_vocab, missing_values


def test_attribute_values_are_distinct_in_order_without_blanks_or_skipped_keys():
    attrs = {"类型": ["裙"], "风格": ["复古", " "], "图案": ["复古", "线条"]}
    assert attribute_values(attrs) == ["裙", "复古", "线条"]
    assert attribute_values(attrs, skip_keys=["类型"]) == ["复古", "线条"]
    assert attribute_values({}) == [] and attribute_values(None) == []


def test_coverage_is_the_share_of_values_the_copy_expresses_leaving_the_category_out():
    attrs = {"类型": ["裙"], "颜色": ["白色"], "材质": ["雪纺"], "裙长": ["连衣裙"]}
    assert coverage("白色雪纺连衣裙", attrs) == 1.0
    assert coverage("雪纺连衣裙，飘逸", attrs) == pytest.approx(2 / 3)  # 白色 missing; 裙 not counted
    assert missing_values("雪纺连衣裙", attrs) == ["白色"]
    assert coverage("一条裙子", {"类型": ["裙"]}) == 1.0  # nothing but the category: nothing to miss


def test_coverage_compares_case_and_width_folded_and_needs_latin_word_edges():
    assert coverage("V领设计", {"衣领型": ["v领"]}) == 1.0
    assert coverage("Ｈ型版型", {"版型": ["h"]}) == 1.0
    assert coverage("chic的风格", {"版型": ["h"]}) == 0.0  # not the h of chic


def test_a_one_character_colour_stem_does_not_express_the_colour():
    assert coverage("显白又衬得肌肤白皙", {"颜色": ["白色"]}) == 0.0


def test_a_colour_word_of_the_same_hue_expresses_the_colour():
    assert coverage("一身纯白，干净利落", {"颜色": ["白色"]}) == 1.0
    assert coverage("蓝色的牛仔外套", {"颜色": ["深蓝色"]}) == 1.0
    assert coverage("红色的外套", {"颜色": ["深蓝色"]}) == 0.0


def test_a_value_is_also_expressed_by_its_stem_an_alias_or_all_its_jieba_words():
    assert coverage("直筒的版型", {"裤型": ["直筒裤"]}) == 1.0  # 直筒裤 -> 直筒
    assert coverage("长款外套", {"裙长": ["长裙"]}) == 0.0  # 长裙 does not shrink to 长
    assert coverage("经典的格纹元素", {"图案": ["格子"]}) == 1.0  # alias 格子 -> 格纹
    assert coverage("袖口做了罗纹收口", {"衣袖型": ["罗纹袖口"]}) == 1.0  # 罗纹 + 袖口
    assert coverage("罗纹的面料", {"衣袖型": ["罗纹袖口"]}) == 0.0


@pytest.mark.parametrize("text, attrs, found", [
    ("这款白色连衣裙", {"颜色": ["红色"]}, ["颜色:白色"]),
    ("红色连衣裙", {"颜色": ["红色"]}, []),
    ("粉红色的裙子", {"颜色": ["白色"]}, ["颜色:粉红色"]),  # one word, not also 红色
    ("白色上衣配黑色腰带，再来点白色", {"颜色": ["红色"]}, ["颜色:白色", "颜色:黑色"]),
    ("蓝色的牛仔外套", {"颜色": ["深蓝色"]}, []),  # same hue
    ("黑白撞色，白色领口", {"颜色": ["黑白"]}, []),
    ("象牙白色的衬衫，不是黑色", {"颜色": ["象牙白色"]}, ["颜色:黑色"]),  # unknown value, known word
    ("真丝面料", {"材质": ["棉"]}, ["材质:真丝"]),
    ("纯棉面料", {"材质": ["棉"]}, []),
    ("短袖设计", {"衣袖长": ["长袖"]}, ["衣袖长:短袖"]),  # the key as the product names it
    ("九分袖设计", {"衣袖长": ["长袖"]}, []),
    ("V领设计", {"裙领型": ["圆领"]}, ["裙领型:v领"]),
])
def test_contradictions_name_the_key_and_the_word_the_product_does_not_allow(text, attrs, found):
    assert contradictions(text, attrs) == found


@pytest.mark.parametrize("text, attrs", [
    ("显白又衬得肌肤白皙，网红同款", {"颜色": ["黑色"]}),  # 白皙/显白/网红 are not colours
    ("绿色环保面料", {"颜色": ["黑色"]}),  # green as in eco-friendly
    ("红色连衣裙", {"材质": ["棉"]}),  # the product says nothing of colour
    ("白色上衣", {"颜色": ["纯色"]}),  # 纯色 names no hue
    ("红色上衣", {"颜色": ["雾霾色"]}),  # a value the vocabulary cannot read: no claim
    ("涤纶面料", {"材质": ["棉", "混纺"]}),  # a blend may hold anything
    ("真丝面料", {"材质": ["蕾丝"]}),  # lace says nothing of the fibre
    ("适合搭配牛仔裤", {"材质": ["蚕丝"]}),  # 牛仔 is what copies pair the product with
    ("红色连衣裙", {}),
])
def test_contradictions_are_not_claimed_without_grounds(text, attrs):
    assert contradictions(text, attrs) == []


def test_the_green_of_eco_friendly_does_not_hide_a_real_green():
    assert contradictions("绿色环保，绿色的裙身", {"颜色": ["黑色"]}) == ["颜色:绿色"]


def test_the_packaged_vocabulary_gives_classes_to_every_value_it_saw_under_a_closed_key():
    data = json.loads((resources.files("copygen") / "data" / "attribute_vocab.json").read_text("utf-8"))
    assert data["version"] and data["derived_from"]["rows"] == 5000
    for name, group in data["closed_keys"].items():
        for key in group["keys"]:
            unseen = set(data["observed"].get(key, {})) - set(group["values"])
            assert not unseen, f"{name}: {key} values without classes: {unseen}"
    assert load_vocab().closed_key_of("裙袖长").name == "袖长"


def test_a_bad_vocabulary_file_is_refused_with_its_name_and_the_problem(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text('{"version": "1", "closed_keys": {"颜色": {"values": {}, "mentions": {"红色": []}}}}',
                    encoding="utf-8")
    with pytest.raises(ValueError, match="closed_keys.颜色.mentions.红色") as caught:
        load_vocab(path)
    assert str(path) in str(caught.value)
    path.write_text("{oops", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_vocab(path)
    with pytest.raises(ValueError, match="missing.json: cannot be read"):
        load_vocab(tmp_path / "missing.json")
