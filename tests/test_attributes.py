"""Attribute faithfulness: coverage of the product's values, contradictions of its closed families,
and the words to block for a product at decode time."""

from __future__ import annotations

import json
import runpy
from importlib import resources
from pathlib import Path

import pytest

from copygen.attributes import (
    attribute_values,
    contradictions,
    coverage,
    excluded_words,
    load_vocab,
    missing_values,
    names_value,
    unstated_found,
    unstated_parts_named,
    unstated_words,
    wanted_phrases,
)
from copygen.compliance import fold
from trainer.data import parse_content

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "advertisegen_sample.jsonl"


def sample_rows() -> list[tuple[dict[str, list[str]], str]]:
    """(attributes, human reference) for each of the 300 committed AdvertiseGen rows."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(parse_content(row["content"]), row["summary"]) for row in rows]


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
    path.write_text('{"version": "1", "parts": {"领": {"keys": ["领型"], "words": []}}}', encoding="utf-8")
    with pytest.raises(ValueError, match="parts.领 must name at least one key or value, and one word"):
        load_vocab(path)
    path.write_text('{"version": "1", "parts": {"袋": {"keys": [], "values": [], "words": ["口袋"]}}}', encoding="utf-8")
    with pytest.raises(ValueError, match="parts.袋 must name at least one key or value, and one word"):
        load_vocab(path)


def test_a_value_is_named_by_itself_an_alias_or_its_stem_not_by_a_word_of_its_family():
    assert names_value("米白色纯棉衬衫", "白色") and names_value("纯棉衬衫", "棉") and names_value("格纹衬衫", "格子")
    assert names_value("浅蓝色直筒牛仔裤", "直筒裤")  # its stem
    assert not names_value("纯棉衬衫", "牛仔布") and not names_value("白皙", "白色")


# --- the families beyond colour, fibre, sleeve and collar -------------------------------------

PENCIL_TROUSERS = {"类型": ["裤"], "材质": ["西装面料"], "颜色": ["黑色"], "裤型": ["铅笔裤"], "裤长": ["九分裤"]}
LINEN_SHORTS = {"类型": ["裤"], "材质": ["亚麻"], "裤型": ["阔腿裤"], "裤长": ["短裤"]}
SKINNY_JEANS = {"类型": ["裤"], "材质": ["牛仔布"], "裤口": ["小脚"]}
SUIT = {"类型": ["上衣"], "衣样式": ["西装"], "衣领型": ["西装领"]}
JUMPSUIT = {"类型": ["裤"], "裤长": ["连体裤"]}
POLO_DRESS = {"类型": ["裙"], "裙长": ["连衣裙"], "裙领型": ["polo领"]}
CHECKED_SHIRT = {"类型": ["上衣"], "颜色": ["黑白"], "图案": ["格子"], "衣样式": ["衬衫"]}


@pytest.mark.parametrize("text, attrs, found", [
    ("这条黑色铅笔裤是百搭的牛仔裤，夏天还能当短裤穿", PENCIL_TROUSERS, ["裤长:短裤", "材质:牛仔裤"]),
    ("亚麻阔腿短裤，复古的牛仔裤背带裤设计", LINEN_SHORTS, ["裤型:背带裤", "材质:牛仔裤"]),
    ("小脚牛仔裤，哈伦的裤型，阔腿更显瘦", SKINNY_JEANS, ["裤口:哈伦", "裤口:阔腿"]),
    ("这款西装其实是一件休闲卫衣", SUIT, ["衣样式:卫衣"]),
    ("俏皮的连体裤，像一条背带裙", JUMPSUIT, ["类型:背带裙"]),
    ("polo领连衣裙，利落的西装领", POLO_DRESS, ["裙领型:西装领"]),
    ("纯白的格子衬衫", CHECKED_SHIRT, ["图案:纯白"]),
])
def test_the_issues_examples_are_flagged(text, attrs, found):
    assert contradictions(text, attrs) == found


@pytest.mark.parametrize("text, attrs, found", [
    # 类型: trousers are never a skirt
    ("阔腿裤穿出了半身裙的飘逸", {"类型": ["裤"]}, ["类型:半身裙"]),
    # 裤种: one-piece trousers against plain ones
    ("帅气的连体裤", {"类型": ["裤"], "裤型": ["直筒裤"]}, ["裤型:连体裤"]),
    # 裤腿: a 小脚 is neither 哈伦 nor 阔腿, a 阔腿 is no 喇叭
    ("经典的哈伦裤", {"类型": ["裤"], "裤口": ["小脚"]}, ["裤口:哈伦裤"]),
    ("微喇的裤脚", {"类型": ["裤"], "裤型": ["阔腿裤"]}, ["裤型:微喇"]),
    # 裤长
    ("七分的长度", {"类型": ["裤"], "裤长": ["长裤"]}, ["裤长:七分"]),
    ("清凉的热裤", {"类型": ["裤"], "裤长": ["九分裤"]}, ["裤长:热裤"]),
    # 牛仔: trousers only
    ("丹宁蓝的裤子", {"类型": ["裤"], "材质": ["棉"]}, ["材质:丹宁"]),
    # 裙种, 裙长, 裙型
    ("优雅的连衣裙", {"类型": ["裙"], "裙长": ["半身裙"]}, ["裙长:连衣裙"]),
    ("飘逸的长裙", {"类型": ["裙"], "裙长": ["短裙"]}, ["裙长:长裙"]),
    ("a字的裙摆，包臀的设计", {"类型": ["裙"], "裙型": ["鱼尾裙"]}, ["裙型:a字"]),
    # 衣样式, 衣长
    ("简约的衬衫", {"类型": ["上衣"], "衣样式": ["卫衣"]}, ["衣样式:衬衫"]),
    ("一件外套", {"类型": ["上衣"], "衣样式": ["卫衣"]}, ["衣样式:外套"]),
    ("修长的长款设计", {"类型": ["上衣"], "衣长": ["短款"]}, ["衣长:长款"]),
    # 腰型, 版型, 门襟
    ("低腰的设计", {"类型": ["裤"], "裤腰型": ["高腰"]}, ["裤腰型:低腰"]),
    ("修身的剪裁", {"类型": ["上衣"], "版型": ["宽松"]}, ["版型:修身"]),
    ("精致的双排扣", {"类型": ["上衣"], "衣门襟": ["单排扣"]}, ["衣门襟:双排扣"]),
    ("单排扣门襟", {"类型": ["上衣"], "衣门襟": ["套头"]}, ["衣门襟:单排扣"]),
    ("两侧对称的纽扣门襟设计", {"类型": ["上衣"], "衣门襟": ["拉链"]}, ["衣门襟:纽扣门襟"]),  # a zip front
    ("选用棉面料，轻盈透气", {"类型": ["裤"], "材质": ["亚麻"]}, ["材质:棉面料"]),
    ("休闲运动风格外套", {"类型": ["裤"], "裤型": ["铅笔裤"]}, ["类型:外套"]),  # trousers are not a top
    ("这款牛仔背带裤", {"类型": ["裙"], "裙型": ["背带裙"]}, ["裙型:背带裤"]),  # a pinafore dress is no dungarees
    ("方便的拉链门襟", {"类型": ["上衣"], "衣门襟": ["单排扣"]}, ["衣门襟:拉链门襟"]),
    # 纯色 and 花纹
    ("条纹的衬衫", {"类型": ["上衣"], "图案": ["纯色"]}, ["图案:条纹"]),
    ("纯色的衬衫", {"类型": ["上衣"], "图案": ["条纹"]}, ["图案:纯色"]),
    ("复古格纹", {"类型": ["上衣"], "图案": ["条纹"]}, ["图案:格纹"]),
])
def test_each_family_flags_a_word_the_products_values_exclude(text, attrs, found):
    assert contradictions(text, attrs) == found


@pytest.mark.parametrize("text, attrs", [
    ("搭配牛仔裤或者半身裙都好看", {"类型": ["上衣"], "材质": ["棉"]}),  # tops are worn with both
    ("连衣裙里面穿一条打底裤", {"类型": ["裙"], "材质": ["雪纺"]}),  # and so are skirts
    ("可拆卸的背带裤", {"类型": ["裤"], "裤型": ["背带裤", "阔腿裤"]}),
    ("束脚的哈伦裤", {"类型": ["裤"], "裤型": ["哈伦裤"]}),  # a 哈伦裤 narrows to a 小脚
    ("露出迷人的小脚踝", {"类型": ["裤"], "裤型": ["阔腿裤"]}),  # an ankle, not a leg shape
    ("九分的长裤", {"类型": ["裤"], "裤长": ["九分裤"]}),  # 九分 counts as long
    ("五分的短裤", {"类型": ["裤"], "裤长": ["五分裤"]}),
    ("三七分的身材比例", {"类型": ["裤"], "裤长": ["九分裤"]}),
    ("中长裙的长度", {"类型": ["裙"], "裙长": ["中长裙"]}),  # 长裙 inside 中长裙 is not read
    ("中长款的风衣", {"类型": ["上衣"], "衣长": ["中长款"]}),
    ("利落的短袖", {"类型": ["上衣"], "衣长": ["中长款"]}),  # a short sleeve, not a short body
    ("长长的裙摆", {"类型": ["裙"], "裙长": ["短裙"]}),  # 长 alone is no length
    ("鱼尾裙包臀的设计", {"类型": ["裙"], "裙型": ["鱼尾裙"]}),
    ("短外套，利落的西装领", {"类型": ["上衣"], "衣样式": ["外套"]}),  # 西装领 is a collar
    ("经典的polo领衬衫", {"类型": ["上衣"], "衣样式": ["衬衫"]}),  # not a polo shirt
    ("宽松的版型，修身显瘦", {"类型": ["上衣"], "版型": ["宽松", "显瘦"]}),  # 显瘦 goes with both
    ("修身的剪裁", {"类型": ["上衣"], "版型": ["显瘦"]}),
    ("字母印花的纯色卫衣", {"类型": ["上衣"], "图案": ["纯色", "字母"]}),  # letters are a print
    ("纯白底色上的碎花印花", {"类型": ["裙"], "图案": ["印花"]}),  # a print sits on a plain ground
    ("小翻领的设计", {"类型": ["上衣"], "衣领型": ["西装领"]}),  # a 西装领 is a 翻领
    ("西装领的设计", {"类型": ["上衣"], "衣领型": ["翻领"]}),  # and a plain 翻领 may be one
    ("高腰的设计", {"类型": ["裤"], "裤腰型": ["松紧腰"]}),  # an elastic waist says nothing of height
    ("这款卫衣", {"类型": ["上衣"], "衣样式": ["衫"]}),  # a bare 衫 may be anything
    ("金属拉链门襟，口袋的纽扣点缀", {"类型": ["上衣"], "衣门襟": ["拉链"]}),  # buttons elsewhere are no front
    ("单排纽扣门襟", {"类型": ["上衣"], "衣门襟": ["单排扣"]}),
])
def test_a_family_does_not_flag_words_the_products_values_allow(text, attrs):
    assert contradictions(text, attrs) == []


# Lines of samples/advertisegen_sample.jsonl whose human copy names the product's own leg shape,
# length, garment kind, closure, pattern or skirt shape in the words the families read.
REFERENCES_USING_FAMILY_WORDS = [1, 2, 4, 6, 7, 10, 13, 15, 19, 20, 22, 28, 49, 63, 66, 71, 76, 81, 86, 134]


@pytest.mark.parametrize("line", REFERENCES_USING_FAMILY_WORDS)
def test_real_references_that_name_the_products_own_values_are_not_flagged(line):
    attrs, reference = sample_rows()[line - 1]
    assert contradictions(reference, attrs) == []


def test_excluded_words_for_linen_wide_leg_shorts_name_denim_and_longer_trousers_never_its_own():
    words = excluded_words(LINEN_SHORTS)
    assert {"牛仔裤", "长裤", "九分裤", "七分裤", "背带裤", "连衣裙", "纯棉"} <= set(words)
    assert not {"短裤", "阔腿", "阔腿裤", "亚麻", "五分"} & set(words)  # 五分 counts as shorts


def test_excluded_words_for_black_wool_suiting_pencil_trousers_name_denim_and_shorts():
    words = excluded_words(PENCIL_TROUSERS)
    assert {"牛仔裤", "短裤", "阔腿裤", "白色"} <= set(words)
    assert not {"铅笔裤", "九分裤", "长裤", "小脚", "黑色"} & set(words)


def test_a_skirt_is_never_called_this_pair_of_trousers_while_decoding_but_may_be_worn_with_one():
    denim_skirt = {"类型": ["裙"], "材质": ["牛仔布"], "裙型": ["牛仔裙", "包臀裙"]}
    words = set(excluded_words(denim_skirt))
    # make demo's model wrote "非常的牛仔裙，这款牛仔裤" for this skirt
    assert {"这款牛仔裤", "这条牛仔裤", "这款阔腿裤", "这件裤子", "该款短裤"} <= words
    assert not {"牛仔裤", "阔腿裤", "一条牛仔裤", "一款阔腿裤"} & words  # 搭配一条牛仔裤 is styling advice
    assert "这款阔腿裤" not in excluded_words({"类型": ["裤"], "裤型": ["阔腿裤"]})  # trousers are trousers
    # blocked, never flagged: only the copy's first garment word is judged as its subject
    assert contradictions("牛仔裙，这款牛仔裤，简单的纽扣", denim_skirt) == []
    assert contradictions("这款牛仔裤，简单的纽扣", denim_skirt) == ["类型:牛仔裤"]


def test_excluded_words_are_longest_first_distinct_and_never_one_character():
    words = excluded_words(LINEN_SHORTS)
    assert words == sorted(set(words), key=lambda w: (-len(w), w))
    assert min(map(len, words)) >= 2


def test_excluded_words_come_only_from_families_the_product_specifies():
    assert excluded_words({}) == [] and excluded_words(None) == []
    words = excluded_words({"类型": ["裤"], "材质": ["亚麻"]})
    assert "牛仔裤" in words and "连衣裙" in words
    assert not {"长裤", "短裤", "九分裤", "哈伦裤", "高腰"} & set(words)  # nothing said of them


def test_a_two_hue_compound_is_blocked_for_a_product_lacking_one_hue_but_never_flagged():
    white_shirt = {"类型": ["上衣"], "颜色": ["白色"], "衣样式": ["衬衫"]}
    assert {"黑白", "蓝白", "红白"} <= set(excluded_words(white_shirt))  # the demo wrote "简约的黑白色"
    assert contradictions("简约的黑白色衬衫", white_shirt) == []  # human copy says it of white shirts
    assert contradictions("简约的黑色衬衫", white_shirt) == ["颜色:黑色"]
    black_and_white = {"类型": ["上衣"], "颜色": ["黑白"]}
    assert not {"黑白", "白黑"} & set(excluded_words(black_and_white))
    assert "蓝白" in excluded_words(black_and_white)
    assert "黑白" not in excluded_words({"类型": ["上衣"], "颜色": ["白色", "黑色"]})
    assert "黑绿" in excluded_words(white_shirt)  # every pair of hues, as the demo wrote "简约大方的黑绿"
    white_shirt_dress = {"颜色": ["白色"], "裙型": ["衬衫裙"]}
    assert "黑底" in excluded_words(white_shirt_dress)  # the demo wrote "白色衬衫的黑底色衬衫"
    assert contradictions("白色衬衫的黑底色衬衫", white_shirt_dress) == []  # a ground colour: blocked, not flagged
    assert "白底" not in excluded_words(white_shirt_dress)


def test_trousers_are_called_no_bare_skirt_but_a_comparison_with_one_is_not_flagged():
    assert {"裙子", "裙装"} <= set(excluded_words(LINEN_SHORTS))  # the demo wrote "这款裙子采用了两侧的设计"
    assert contradictions("比裙子更加方便实用", LINEN_SHORTS) == []  # as 11 trouser references do
    assert "裙子" not in excluded_words({"类型": ["裙"], "裙长": ["半身裙"]})  # a skirt is one


def test_a_hue_before_a_garment_word_names_a_colour():
    dark_green_skirt = {"类型": ["裙"], "颜色": ["墨绿色"], "裙长": ["中长裙"]}
    assert contradictions("简洁的黑裙，百褶的裙摆", dark_green_skirt) == ["颜色:黑裙"]  # the demo's words
    assert contradictions("经典的小黑裙", {"类型": ["裙"], "颜色": ["黑色"]}) == []


def test_a_compound_that_is_also_a_mention_is_blocked_as_a_compound_and_checked_as_a_mention():
    linen_shorts = {"类型": ["裤"], "材质": ["亚麻"], "裤长": ["短裤"]}
    assert "棉麻" in excluded_words(linen_shorts)  # the demo called linen shorts 棉麻 (cotton-linen)
    assert contradictions("清新的棉麻材质", linen_shorts) == []  # its linen half is true
    assert contradictions("清新的棉麻材质", {"类型": ["裤"], "材质": ["涤纶"]}) == ["材质:棉麻"]
    assert "棉麻" not in excluded_words({"类型": ["裤"], "材质": ["棉麻"]})


def test_a_part_of_another_kind_of_garment_is_blocked_but_never_flagged():
    jacket = {"类型": ["上衣"], "衣样式": ["外套"]}
    assert {"裤身", "裤脚", "裤腿"} <= set(excluded_words(jacket))  # the demo gave a jacket a 裤身 and 裤脚
    assert contradictions("搭配小脚裤，裤脚微微露出脚踝", jacket) == []  # a top's copy may name what it is worn with
    assert "裙摆" not in excluded_words(jacket)  # a top may have a skirt's hem (a peplum)
    trousers = {"类型": ["裤"], "裤长": ["九分裤"]}
    assert "裙摆" in excluded_words(trousers) and not {"裤身", "裤脚"} & set(excluded_words(trousers))
    skirt = {"类型": ["裙"], "裙长": ["半身裙"]}
    # the small model gave a denim skirt 裤子的开叉 and called an overall skirt a 半身裤 (2026.12-9)
    assert {"裤脚", "裤子", "半身裤"} <= set(excluded_words(skirt)) and "裙摆" not in excluded_words(skirt)
    assert contradictions("外面是裙子，里面其实是裤子，不怕走光", skirt) == []  # culottes labelled 裙: never flagged
    assert "裤脚" not in unstated_words(jacket)  # what the garment is, never an unstated fact


def test_a_top_is_no_pair_of_trousers_or_skirt_even_without_a_type():
    # the demo called a white shirt's cut 裙子的版型 and gave a sweatshirt with no 类型 休闲裤子
    shirt = {"类型": ["上衣"], "衣样式": ["衬衫"]}
    sweatshirt = {"颜色": ["黑色"], "衣样式": ["卫衣"]}
    for top in (shirt, sweatshirt):
        assert {"裤子", "裙子", "裤脚"} <= set(excluded_words(top))
        assert "裙摆" not in excluded_words(top)  # a peplum hem is still a top's
        assert contradictions("下身搭配裤子或裙子都好看", top) == []  # styled with them: blocked, never flagged
    assert "裙子" not in excluded_words({"类型": ["裙"], "裙长": ["半身裙"]})
    shirt_dress = {"类型": ["裙"], "衣样式": ["衬衫"]}  # a dress, whatever its 衣样式: no trousers
    assert "裙子" not in excluded_words(shirt_dress) and {"裤子", "裤脚"} <= set(excluded_words(shirt_dress))


def test_a_top_or_skirt_called_a_denim_garment_is_denim():
    chiffon_top = {"类型": ["上衣"], "材质": ["雪纺"], "图案": ["印花"]}
    assert contradictions("这款牛仔外套采用印花图案", chiffon_top) == ["材质:牛仔外套"]  # the demo wrote it
    assert {"牛仔外套", "牛仔衬衫"} <= set(excluded_words(chiffon_top)) and "牛仔裙" not in excluded_words(chiffon_top)
    assert contradictions("下身搭配牛仔裤或牛仔裙，休闲又时尚", chiffon_top) == []  # worn with them: true
    denim_jacket = {"类型": ["上衣"], "材质": ["牛仔布"], "衣样式": ["外套"]}
    assert contradictions("这款牛仔外套，街头范十足", denim_jacket) == []
    skirt = {"类型": ["裙"], "材质": ["棉"]}
    assert contradictions("这条牛仔半身裙", skirt) == ["材质:牛仔半身裙"]
    assert contradictions("外搭一件牛仔外套", {"类型": ["裙"], "材质": ["雪纺"]}) == []  # a dress worn with one
    assert contradictions("这款牛仔外套", {"类型": ["上衣"], "材质": ["混纺"]}) == []  # a blend may be anything


def test_pencil_trousers_are_cut_slim_and_other_leg_shapes_say_nothing_of_the_cut():
    assert "宽松" in excluded_words(PENCIL_TROUSERS)  # the demo wrote 裤身是比较宽松的版型
    assert contradictions("裤身是比较宽松的版型", PENCIL_TROUSERS) == ["裤型:宽松"]
    assert contradictions("修身的铅笔裤", PENCIL_TROUSERS) == []
    assert contradictions("宽松的版型", LINEN_SHORTS) == [] and contradictions("修身的版型", LINEN_SHORTS) == []


def test_unstated_words_are_the_words_of_the_families_a_product_says_nothing_about():
    dress = {"类型": ["裙"], "材质": ["雪纺"], "图案": ["碎花"], "裙长": ["连衣裙"], "裙袖长": ["短袖"]}
    words = set(unstated_words(dress))
    assert {"白色", "黑色", "v领", "高腰", "修身", "单排扣"} <= words  # no colour, collar, waist, cut, closure
    assert not {"碎花", "短袖", "长袖", "印花"} & words  # stated families: excluded_words() judges them
    assert not {"连衣裙", "半身裙", "衬衫", "牛仔裤"} & words  # garment words are never unstated
    assert {"口袋", "拼接", "开叉", "荷叶边"} <= words  # features it does not list (vocabulary `details`)
    ruffled = {"类型": ["上衣"], "衣款式": ["荷叶边"], "衣袖型": ["喇叭袖"]}
    assert not {"荷叶边", "喇叭袖", "喇叭"} & set(unstated_words(ruffled))  # its own, and inside its own
    trench = {"类型": ["上衣"], "颜色": ["卡其色"], "衣样式": ["风衣"], "衣领型": ["小立领"]}
    assert {"系带", "蝴蝶结", "松紧腰", "荷叶", "网纱"} <= set(unstated_words(trench))  # what the demo gave it
    assert {"针织", "蕾丝", "水洗", "磨白"} <= set(unstated_words(trench))  # no fabric listed, none made up
    chiffon_top = {"类型": ["上衣"], "材质": ["雪纺"], "衣样式": ["雪纺衫"]}
    assert {"蕾丝", "网布"} <= set(unstated_words(chiffon_top))  # the demo's 蕾丝面料 and 网布料
    assert "蕾丝" not in unstated_words({"类型": ["裙"], "图案": ["蕾丝"]})  # its own
    assert "针织" not in unstated_words({"类型": ["上衣"], "衣样式": ["针织衫"]})  # inside its own value
    assert "水洗" not in unstated_words({"类型": ["裤"], "材质": ["水洗", "牛仔布"]})
    assert {"背带", "水溶"} <= set(unstated_words(PENCIL_TROUSERS))  # the demo's 背带有型, 水溶花的西装面料
    assert "宝宝" in unstated_words(PENCIL_TROUSERS)  # the demo's 让宝宝宝的方便穿脱, on adult trousers
    assert "宝宝" not in unstated_words({"类型": ["裤"], "裤长": ["短裤"]}, text="儿童宝宝休闲短裤")  # its title
    assert "女孩子" not in unstated_words(PENCIL_TROUSERS) and "孩子" not in unstated_words(PENCIL_TROUSERS)
    plain_shirt_dress = {"颜色": ["白色"], "裙型": ["衬衫裙"], "裙下摆": ["荷叶边"]}
    assert "粉嫩" in excluded_words(plain_shirt_dress)  # the demo's 粉粉粉嫩的白色
    assert contradictions("超级粉嫩又十分的甜美", plain_shirt_dress) == []  # a reference of a white dress
    assert "粉嫩" not in excluded_words({"类型": ["裙"], "颜色": ["粉色"]})
    assert "弹力" in unstated_words(PENCIL_TROUSERS)  # stretch: no attribute says so
    assert "花纹" in unstated_words(plain_shirt_dress)  # the demo's 调节处的花纹: no 图案, no pattern
    assert "花纹" in excluded_words({"类型": ["裙"], "图案": ["纯色"]})
    assert contradictions("纯色无花纹", {"类型": ["裙"], "图案": ["纯色"]}) == []  # a compound: never flagged
    assert "花纹" not in excluded_words({"类型": ["裙"], "图案": ["条纹"]})
    assert "背带" not in unstated_words({"类型": ["裤"], "裤型": ["背带裤"]})
    assert "荷叶" not in unstated_words(ruffled)  # inside its own 荷叶边
    assert "松紧腰" not in unstated_words({"类型": ["裤"], "裤腰型": ["松紧腰"]})
    assert "系带" not in unstated_words({"类型": ["上衣"], "衣款式": ["绑带"]})  # 绑带 by another name
    assert "雪纺" not in unstated_words({"类型": ["上衣"], "衣样式": ["雪纺衫"]})  # inside its own value
    assert "纯棉" in unstated_words({"类型": ["上衣"], "衣样式": ["雪纺衫"]})
    solid = {"类型": ["上衣"], "颜色": ["纯色"]}  # a solid colour, but which?
    assert {"白色", "黑色"} <= set(unstated_words(solid)) and "纯色" not in unstated_words(solid)
    assert "白色" not in unstated_words({"类型": ["上衣"]}, text="白色纯棉上衣")  # its title says so
    assert min(map(len, words)) >= 2


def test_a_polo_is_no_卫衫():
    polo = {"类型": ["上衣"], "图案": ["条纹"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    assert contradictions("这款polo领卫衫采用经典条纹设计", polo) == ["衣样式:卫衫"]  # the demo's words
    assert "卫衫" in excluded_words(polo)
    assert contradictions("休闲的卫衫", {"类型": ["上衣"], "衣样式": ["卫衣"]}) == []


def test_a_round_collar_spelt_圆形领_contradicts_a_turn_down_collar():
    assert contradictions("简约的圆形领", {"类型": ["上衣"], "衣领型": ["翻领"]}) == ["衣领型:圆形领"]
    assert contradictions("简约的圆形领", {"类型": ["上衣"], "衣领型": ["圆领"]}) == []


@pytest.mark.parametrize("attrs, kept", [
    ({"类型": ["裙"], "裙长": ["中长裙"]}, "长裙"),  # would block the 长裙 of 中长裙
    ({"类型": ["上衣"], "衣样式": ["外套"], "衣领型": ["西装领"]}, "西装"),  # of its 西装领
    ({"类型": ["上衣"], "颜色": ["粉色"]}, "红色"),  # of 粉红色, a pink
    ({"类型": ["上衣"], "衣长": ["中长款"]}, "长款"),
])
def test_an_excluded_word_never_sits_inside_a_word_naming_the_products_own_value(attrs, kept):
    assert kept not in excluded_words(attrs)


def _blocked_never_flagged(vocab):
    """The words blocked while decoding that no check flags: a family's blocked_with and a value's avoided."""
    return ({w for group in vocab.closed for ws in group.blocked_with.values() for w in ws}
            | {w for ws in vocab.avoided.values() for w in ws})


def test_no_excluded_word_of_a_sample_product_sits_inside_its_values_or_its_allowed_words():
    vocab = load_vocab()
    compounds = {w for group in vocab.closed for w in group.compounds}  # judged by their own rule
    blocked = _blocked_never_flagged(vocab)  # blocked though allowed
    for attrs, _ in sample_rows():
        words = [w for w in excluded_words(attrs) if w not in blocked]
        own = {fold(v) for v in attribute_values(attrs)}
        for group in vocab.closed:
            judged = group.judge(attrs)
            if judged is not None and not group.subject:  # a subject family blocks nothing
                own |= {w for w, classes in group.mentions.items() if classes & judged[1] and w not in compounds}
        assert not [(w, o) for w in words for o in own if w in o], attrs
        assert "裤" not in words and "裙" not in words


def test_every_excluded_word_of_a_sample_product_but_a_compound_is_flagged_in_a_copy():
    compounds = {w for group in load_vocab().closed for w in group.compounds}
    blocked = _blocked_never_flagged(load_vocab())
    for attrs, _ in sample_rows():
        for word in set(excluded_words(attrs)) - compounds - blocked:
            assert contradictions(f"这款{word}。", attrs), (attrs, word)


def test_a_word_inside_a_phrase_its_family_ignores_is_excluded_but_not_flagged_there():
    coat = {"类型": ["上衣"], "衣样式": ["外套"]}
    assert "西装" in excluded_words(coat)  # blocked while generating, coarse as blocking is
    assert contradictions("利落的西装领", coat) == []  # the post-check reads the collar
    assert contradictions("一件西装", coat) == ["衣样式:西装"]


def test_the_families_added_in_2026_12_do_not_count_towards_coverage():
    assert coverage("一件外套", {"衣样式": ["西装"]}) == 0.0  # allowed for a suit, but not naming it
    assert coverage("九分的长度", {"裤长": ["九分裤"]}) == 1.0  # its own stem still does
    assert coverage("利落的西装领", {"衣领型": ["polo领"]}) == 0.0  # named collars are apart now
    assert coverage("利落的翻领", {"衣领型": ["polo领"]}) == 1.0


# The sample's references the checker flags, each one a reference that disagrees with its own row's
# labels. The 2% bound is on all 5,000 rows (the vocabulary's `measured`, checked below: 1.96%);
# on these 300 rows one label error is a third of a point, so the rows are pinned instead: a new
# flag here is a new false positive to read.
SAMPLE_REFERENCES_AGAINST_THEIR_LABELS = {
    58: "a 牛仔裙 whose reference says 这款牛仔裤",
    83: "a top (此款上衣, 圆领, 螺纹收口) typed 裙",
    130: "a 短款 trench coat whose reference praises its 长款",
    163: "a 黑色 sweatshirt described in 纯白色 with black letters",
    165: "a 白色 dress printed with 蓝灰色 doves",
    190: "a 黑色 shirt described as 纯白",
    262: "a 黑色 hoodie whose reference calls it 橘色 with black trim",
    291: "a 灰色 shirt described in 灰色 and 藏青色",
}


def test_the_checker_flags_only_the_samples_references_that_disagree_with_their_labels():
    rows = sample_rows()
    flagged = [n for n, (attrs, reference) in enumerate(rows, 1) if contradictions(reference, attrs)]
    assert flagged == sorted(SAMPLE_REFERENCES_AGAINST_THEIR_LABELS)


def test_the_checker_flags_far_more_copy_written_for_another_product():
    rows = sample_rows()
    shifted = rows[7:] + rows[:7]  # each product judged against another product's reference
    flagged = sum(1 for (attrs, _), (_, other) in zip(rows, shifted) if contradictions(other, attrs))
    assert flagged / len(rows) >= 0.25


def test_the_packaged_vocabulary_records_its_measured_false_positive_rate_under_2_percent():
    data = json.loads((resources.files("copygen") / "data" / "attribute_vocab.json").read_text("utf-8"))
    measured = data["measured"]
    assert measured["rows"] == 5000 and measured["reference_rate"] <= 0.02
    assert measured["shuffled_rate"] > 10 * measured["reference_rate"]
    assert "scripts/measure_attribute_checker.py" in measured["command"]
    for name, group in data["closed_keys"].items():
        assert group["measured"]["products"] > 0, name
        assert all(len(word) >= 2 for word in group["mentions"]), name  # nothing to block 白 or 裤



SHARED_PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "advertisegen" / "train_first5000.json"


@pytest.mark.skipif(not SHARED_PAIRS.exists(), reason=f"{SHARED_PAIRS} is not beside this checkout")
def test_the_recorded_false_positive_rate_is_the_rate_of_the_packaged_vocabulary_on_all_5000_references():
    """The recorded rate, measured again: a vocabulary edit that flags more references fails here,
    not when someone next runs scripts/measure_attribute_checker.py."""
    data = json.loads((resources.files("copygen") / "data" / "attribute_vocab.json").read_text("utf-8"))
    rows = [json.loads(line) for line in SHARED_PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    flagged = sum(1 for row in rows if contradictions(row["summary"], parse_content(row["content"])))
    assert len(rows) == data["measured"]["rows"] == 5000
    assert round(flagged / len(rows), 4) == data["measured"]["reference_rate"] <= 0.02


# Wrong facts read in published copy (rank 1, first 20 validation products) that 2026.12-1 let
# through; each with a reference-like sentence of the same kind that stays unflagged.
@pytest.mark.parametrize("text, attrs, found", [
    ("搭配宽松的阔脚裤", {"类型": ["裤"], "裤口": ["小脚"]}, ["裤口:阔脚裤"]),
    ("a摆的裙摆设计", {"类型": ["裙"], "裙型": ["牛仔裙", "包臀裙"]}, ["裙型:a摆"]),
    ("a字裙摆", {"类型": ["裙"], "裙型": ["包臀裙"]}, ["裙型:a字裙摆"]),
    ("精美的花卉印花图案", {"类型": ["裙"], "图案": ["卡通"], "裙长": ["连衣裙"]}, ["图案:花卉"]),
    ("采用柔软的棉质面料", {"类型": ["裙"], "材质": ["雪纺"]}, ["材质:棉质"]),
    ("连衣裙的印花图案", {"类型": ["裙"], "图案": ["刺绣"]}, ["图案:印花"]),
    ("宽松的连衣裙", {"类型": ["上衣"], "衣样式": ["卫衣"]}, ["衣样式:连衣裙"]),
    ("浪漫情怀旧刺绣花", {"类型": ["上衣"], "材质": ["雪纺"], "图案": ["印花"]}, ["图案:刺绣"]),  # the demo, 12-7
])
def test_the_published_copys_wrong_facts_are_flagged(text, attrs, found):
    assert contradictions(text, attrs) == found
    assert found[0].split(":")[1] in excluded_words(attrs)


@pytest.mark.parametrize("text, attrs", [
    ("阔脚裤的设计，显瘦", {"类型": ["裤"], "裤型": ["阔腿裤"]}),  # a wide leg may say 阔脚
    ("a摆的裙摆设计", {"类型": ["裙"], "裙型": ["a字"]}),
    ("有趣时尚的卡通图案印花", {"类型": ["上衣"], "图案": ["卡通"]}),  # cartoons are printed
    ("花卉印花，卡通的小熊", {"类型": ["上衣"], "图案": ["卡通", "印花"]}),  # a print may be floral
    ("轻薄半透棉质雪纺", {"类型": ["上衣"], "材质": ["棉", "雪纺"]}),  # unless it names cotton
    ("仿真丝雪纺面料", {"类型": ["裙"], "材质": ["雪纺"]}),  # silk is no contradiction
    ("精致的花朵刺绣", {"类型": ["裙"], "图案": ["刺绣"]}),  # embroidered flowers
    ("重工刺绣印花图案", {"类型": ["裙"], "图案": ["刺绣", "印花"]}),
    ("精美的绣花图案", {"类型": ["裙"], "图案": ["刺绣"]}),
    ("短款卫衣连衣裙", {"类型": ["上衣"], "衣样式": ["卫衣"]}),  # a sweatshirt dress
    ("衬衫与连衣裙的完美结合", {"类型": ["上衣"], "衣样式": ["衬衫"]}),  # shirts are left out
])
def test_reference_like_sentences_near_the_published_copys_gaps_are_not_flagged(text, attrs):
    assert contradictions(text, attrs) == []


def test_a_skirt_or_top_whose_copy_is_about_trousers_is_flagged_only_where_trousers_are_its_subject():
    pinafore = {"类型": ["裙"], "材质": ["牛仔布"], "裙型": ["背带裙"]}
    pencil = {"类型": ["裤"], "材质": ["西装面料"], "裤型": ["铅笔裤"]}
    assert contradictions("宽边裤以形式呈现。裤腿使用了灯笼形的外形轮廓设计", pencil) == ["裤型:宽边裤", "裤型:灯笼形"]
    assert contradictions("灯笼形的裤腿", {"类型": ["裤"], "裤型": ["哈伦裤"]}) == []
    polo = {"类型": ["上衣"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    # rank-1 demo copy (2026-12-01) that no family flagged
    assert contradictions("这款牛仔裤采用了经典的小脚设计", pinafore) == ["类型:牛仔裤"]
    assert contradictions("休闲裤，这款polo领的设计", polo) == ["类型:休闲裤"]
    assert contradictions("新品上市，这条牛仔裤很百搭", pinafore) == ["类型:牛仔裤"]  # after an opening
    # the trousers a skirt or top is worn with are not its subject
    assert contradictions("这款背带裙，搭配一条牛仔裤更显活力", pinafore) == []
    assert contradictions("时髦的牛仔裤也能搭", pinafore) == []
    assert contradictions("这款牛仔裤很百搭", {"类型": ["裤"], "材质": ["牛仔布"]}) == []
    assert "牛仔裤" not in excluded_words(pinafore)  # never blocked: the word is fine elsewhere


def test_a_short_or_long_cut_word_is_read_as_a_trouser_length():
    cropped = {"类型": ["裤"], "裤长": ["九分裤"]}
    assert contradictions("黑色的纯色短款式", cropped) == ["裤长:短款"]  # demo copy, 2026-12-01
    assert "短款" in excluded_words(cropped)
    assert contradictions("短款的设计，清爽", {"类型": ["裤"], "裤长": ["短裤"]}) == []
    assert contradictions("长款的九分裤", cropped) == []


def test_a_vocabulary_with_a_malformed_subject_is_refused_by_field(tmp_path):
    path = tmp_path / "vocab.json"
    family = {"values": {"裤": None}, "mentions": {"牛仔裤": ["裤"]}, "subject": "这款"}
    path.write_text(json.dumps({"version": "t", "closed_keys": {"主体": family}}), encoding="utf-8")
    with pytest.raises(ValueError, match="closed_keys.主体.subject"):
        load_vocab(path)


def test_a_vocabulary_with_a_malformed_only_for_or_expresses_is_refused_by_field(tmp_path):
    path = tmp_path / "vocab.json"
    family = {"values": {}, "mentions": {}}
    for field, bad in (("only_for", ["裤"]), ("expresses", "no")):
        doc = {"version": "1", "closed_keys": {"牛仔": {**family, field: bad}}}
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        with pytest.raises(ValueError, match=f"closed_keys.牛仔.{field}"):
            load_vocab(path)


def test_a_top_or_trousers_are_never_called_a_dress_and_a_dress_always_may_be():
    # make demo's copy of 2026-12-04 called a polo shirt 休闲的连衣裙版型 and a denim jacket 经典的连衣裙 (2026.12-10)
    pencil = {"类型": ["裤"], "材质": ["西装面料"], "裤型": ["铅笔裤"]}
    assert contradictions("宽边裤以形式呈现。裤腿使用了灯笼形的外形轮廓设计", pencil) == ["裤型:宽边裤", "裤型:灯笼形"]
    assert contradictions("灯笼形的裤腿", {"类型": ["裤"], "裤型": ["哈伦裤"]}) == []
    polo = {"类型": ["上衣"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    jacket = {"类型": ["上衣"], "材质": ["牛仔布"], "衣样式": ["外套"]}
    harem = {"类型": ["裤"], "裤型": ["哈伦裤"]}
    for product in (polo, jacket, harem):
        assert {"连衣裙", "连身裙"} <= set(excluded_words(product))
    assert contradictions("搭配一条连衣裙也很好看，", jacket) == []  # 64 top references say it: blocked, not flagged
    for dress in ({"类型": ["裙"], "裙型": ["衬衫裙"]}, {"类型": ["裙"], "衣样式": ["衬衫"]}, {"类型": ["裙"]}):
        assert "连衣裙" not in excluded_words(dress)
    # the next make demo opened the polo's copy 这款polo领的休闲裤
    assert {"休闲裤", "运动裤", "西裤"} <= set(excluded_words(polo))
    assert not {"休闲裤", "运动裤", "西裤"} & set(excluded_words(harem))


def test_linen_or_cotton_is_never_written_up_as_a_chiffon_fabric_and_no_reference_is_flagged_for_it():
    # make demo gave linen shorts 温柔的雪纺面料 (2026.12-10)
    linen_shorts = {"类型": ["裤"], "材质": ["亚麻"], "裤长": ["短裤"]}
    assert {"雪纺面料", "雪纺材质"} <= set(excluded_words(linen_shorts))
    assert contradictions("温柔的雪纺面料", linen_shorts) == []  # blocked, never flagged
    for chiffon_or_unsaid in ({"材质": ["雪纺"]}, {"材质": ["混纺"]}, {"材质": ["蕾丝"]}):
        assert "雪纺面料" not in excluded_words({"类型": ["裙"], **chiffon_or_unsaid})


def test_a_stated_only_job_names_stretch_or_a_slit_only_when_the_product_lists_one():
    # make demo gave suiting pencil trousers 良好的弹性 and a 开衩 (2026.12-10)
    pencil = {"类型": ["裤"], "材质": ["西装面料"], "裤型": ["铅笔裤"]}
    assert {"弹性", "弹力", "开衩", "开叉"} <= set(unstated_words(pencil))
    slit = {**pencil, "裤款式": ["开叉"]}
    assert not {"开衩", "开叉"} & set(unstated_words(slit))  # its own slit, in either spelling


def test_a_stated_only_job_gives_no_adults_garment_to_a_child_in_the_words_the_references_use_for_one():
    # make demo's copy of 2026-12-04 wrote 方便宝贝穿脱 for adult harem trousers (2026.12-10)
    harem = {"类型": ["裤"], "裤型": ["哈伦裤"], "裤腰型": ["松紧腰"]}
    assert {"宝贝穿", "小宝贝", "让宝贝", "给宝贝", "勒宝贝", "宝宝"} <= set(unstated_words(harem))
    assert "宝贝" not in unstated_words(harem)  # 这款宝贝: the shop's word for an item
    assert "宝贝穿" not in unstated_words(harem, text="宝贝穿的哈伦裤")  # its own text says it


def test_a_stated_only_job_gives_no_adults_garment_to_a_child_nor_calls_linen_cotton():
    # make demo's copy (2026.12-13): 方便孩子穿脱 for adult harem trousers, 清新的棉材质 for linen shorts
    harem = {"类型": ["裤"], "裤型": ["哈伦裤"], "裤腰型": ["松紧腰"]}
    assert {"让孩子", "给孩子", "方便孩子", "小孩"} <= set(unstated_words(harem))
    assert not {"孩子", "女孩子"} & set(unstated_words(harem))  # 适合女孩子: a young woman
    assert "方便孩子" not in unstated_words(harem, text="儿童哈伦裤，方便孩子穿脱")
    assert contradictions("设计师选择了清新的棉材质，棉的材质透气", LINEN_SHORTS) == ["材质:棉材质", "材质:棉的材质"]
    assert contradictions("纯棉材质", {"类型": ["上衣"], "材质": ["棉"]}) == []


def test_a_loose_cut_is_never_called_fitted_while_decoding_yet_a_reference_that_says_so_is_not_flagged():
    # the demo model's rank-1 copies of loose products said 宽松的版型，修身显瘦 (2026.12-14); 46 of the 291
    # references of products listed 宽松 and 显瘦 say 修身 too, so it is blocked, never flagged
    loose = {"类型": ["上衣"], "版型": ["宽松", "显瘦"]}
    assert "修身" in excluded_words(loose)
    assert contradictions("宽松的版型，起到了修身显瘦的作用", loose) == []
    assert "修身" not in excluded_words({"类型": ["上衣"], "版型": ["显瘦"]})
    assert ("修身",) not in wanted_phrases(loose, excluded=excluded_words(loose))


def test_a_listed_value_blocks_the_words_its_references_avoid_and_flags_none_of_them():
    # make demo gave a street denim jacket 浪漫柔美 and 性感 wide-leg trousers 阳光帅气 (2026.12-28)
    street = {"类型": ["上衣"], "材质": ["牛仔布"], "风格": ["街头"], "衣样式": ["外套"]}
    sexy = {"类型": ["裤"], "风格": ["性感"], "裤型": ["阔腿裤"]}
    assert {"柔美", "淑女", "高贵"} <= set(excluded_words(street))
    assert "阳光" in excluded_words(sexy) and "柔美" not in excluded_words(sexy)
    assert contradictions("平添几分浪漫柔美的气质", street) == []  # 1 of the 229 street references says 柔美
    assert "阳光" not in excluded_words({"类型": ["裤"], "裤型": ["阔腿裤"]})  # no style, no register blocked
    ladylike_street = {**street, "风格": ["街头", "淑女"]}
    assert "淑女" not in excluded_words(ladylike_street)  # a style it lists stays open...
    assert {"帅气", "柔美"} <= set(excluded_words(ladylike_street))  # ...and each style blocks its own
    # a fabric and a kind of garment too: readers counted a denim skirt's 飘逸轻盈 wrong (2026.12-29)
    denim_skirt = {"类型": ["裙"], "材质": ["牛仔布"], "裙型": ["背带裙"]}
    assert {"飘逸", "垂感", "轻薄"} <= set(excluded_words(denim_skirt))
    assert "飘逸" not in excluded_words({"类型": ["裙"], "材质": ["雪纺"]})
    assert contradictions("裙摆飘逸灵动", denim_skirt) == []
    # and 优雅, which the copy of sweatshirts avoids: make demo wrote 更显得时尚优雅 for a black hoodie (2026.12-33)
    hoodie = {"类型": ["上衣"], "颜色": ["黑色"], "风格": ["休闲"], "衣样式": ["卫衣"], "衣款式": ["连帽"]}
    assert "优雅" in excluded_words(hoodie)
    assert "优雅" not in excluded_words({"类型": ["裙"], "风格": ["淑女"], "裙长": ["连衣裙"]})


def test_an_avoided_block_that_is_not_a_list_of_words_is_refused(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text('{"version": "1", "avoided": {"keys": ["风格"], "blocked": {"街头": "淑女"}}}', encoding="utf-8")
    with pytest.raises(ValueError, match="avoided.blocked.街头 must be a list of non-empty strings"):
        load_vocab(path)


@pytest.mark.skipif(not SHARED_PAIRS.exists(), reason=f"{SHARED_PAIRS} is not beside this checkout")
def test_the_avoided_words_are_what_the_script_derives_from_all_5000_references():
    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "derive_avoided_words.py"))
    table = script["avoided_words"](script["read_rows"](SHARED_PAIRS))
    derived = {value: tuple(word for word, _, _ in words) for value, words in table.items()}
    assert derived == dict(load_vocab().avoided)
    assert tuple(script["KEYS"]) == load_vocab().avoided_keys
    street = {word: (said, expected) for word, said, expected in table["街头"]}
    assert street["淑女"] == (1, 6.5)  # 1 of the 229 street references where 6.5 would say it


def test_a_stated_only_job_names_an_elastic_waist_only_when_the_product_has_one():
    # make demo gave straight jeans 腰部的松紧设计 and adult harem trousers 不会勒到宝贝 (2026.12-11)
    jeans = {"类型": ["裤"], "材质": ["牛仔布"], "裤型": ["直筒裤"], "裤长": ["九分裤"]}
    assert {"松紧", "勒到宝贝"} <= set(unstated_words(jeans))
    for elastic in ({"裤腰型": ["松紧腰"]}, {"裤款式": ["松紧带"]}):
        assert "松紧" not in unstated_words({**jeans, **elastic})


def test_a_stated_only_job_calls_a_fabric_a_blend_only_when_the_product_lists_one():
    # make demo called a knit cardigan's and a denim jacket's fabric 混纺 (2026.12-11)
    cardigan = {"类型": ["上衣"], "材质": ["针织"], "衣样式": ["开衫"]}
    assert "混纺" in unstated_words(cardigan)
    assert "混纺" not in unstated_words({**cardigan, "材质": ["针织", "混纺"]})


def test_a_stated_only_job_gives_no_flap_turn_up_or_belt_nobody_listed():
    # make demo's third job of 2026.12-11: a hoodie's 翻盖口袋, a trench coat's 翻边, straight jeans' 裤带
    hoodie = {"衣样式": ["卫衣"], "衣款式": ["连帽", "口袋"]}
    assert {"翻盖", "翻边", "裤带"} <= set(unstated_words(hoodie))
    assert "翻边" not in unstated_words({"类型": ["裤"], "裤口": ["翻折"]})  # 翻折's other word


def test_a_top_or_a_skirt_is_never_called_one_piece_trousers_and_trousers_keep_theirs():
    # make demo called a polo shirt 休闲的连体裤 (2026.12-12): blocked, never flagged
    pencil = {"类型": ["裤"], "材质": ["西装面料"], "裤型": ["铅笔裤"]}
    assert contradictions("宽边裤以形式呈现。裤腿使用了灯笼形的外形轮廓设计", pencil) == ["裤型:宽边裤", "裤型:灯笼形"]
    assert contradictions("灯笼形的裤腿", {"类型": ["裤"], "裤型": ["哈伦裤"]}) == []
    polo = {"类型": ["上衣"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    overall_skirt = {"类型": ["裙"], "裙型": ["背带裙"]}
    for product in (polo, overall_skirt):
        assert {"连体裤", "连身裤", "连衣裤", "背带裤"} <= set(excluded_words(product))
    assert contradictions("休闲的连体裤，彰显休闲随性的气质", polo) == []
    for own in ({"类型": ["裤"], "裤型": ["连体裤"]}, {"类型": ["裤"], "裤型": ["背带裤"]}):
        assert own["裤型"][0] not in excluded_words(own)  # trousers may be one-piece


def test_linen_shorts_are_no_silk_and_name_spandex_only_when_listed():
    # make demo's copy of 2026-12-04 gave linen shorts 纯丝面料 and 氨纶材质 (2026.12-9)
    linen_shorts = {"类型": ["裤"], "材质": ["亚麻"], "裤型": ["阔腿裤"], "裤长": ["短裤"]}
    assert contradictions("采用了纯丝面料，轻盈柔软", linen_shorts) == ["材质:纯丝"]
    assert contradictions("采用了亚麻面料，轻盈柔软", linen_shorts) == []
    assert "氨纶" in unstated_words(linen_shorts) and "氨纶" not in excluded_words(linen_shorts)


def test_a_stated_only_job_gives_trousers_of_no_stated_fabric_no_jeans_unless_their_title_says_denim():
    # make demo's copy of 2026-12-04 called 宽松 高腰 阔腿裤 with no 材质 "时尚的牛仔裤" (2026.12-9)
    wide_legs = {"类型": ["裤"], "版型": ["宽松"], "裤型": ["阔腿裤"], "裤腰型": ["高腰"]}
    assert {"牛仔裤", "牛仔", "丹宁"} <= set(unstated_words(wide_legs))
    assert not {"牛仔裤", "牛仔", "丹宁"} & set(unstated_words(wide_legs, text="牛仔阔腿裤"))  # its title says it
    jacket = {"类型": ["上衣"], "衣样式": ["外套"]}
    assert "牛仔夹克" in unstated_words(jacket) and "牛仔裤" not in unstated_words(jacket)  # worn with jeans: true
    # (牛仔外套 stays open for it: the 衣样式 family reads it as the jacket it is, and a word one family
    # allows is no unstated fact)
    assert "牛仔裤" not in unstated_words({"类型": ["裤"], "材质": ["牛仔布"]})
    # what the title names of a family opens its agreeing words, not the family
    shirt = unstated_words({"衣样式": ["衬衫"]}, text="白色衬衫")
    assert "净白色" not in shirt and "黑色" in shirt
    assert "纯白色" in shirt  # still: it also names a solid colour (纯色), which the title does not say


def test_a_stated_only_job_names_who_wears_it_only_when_the_product_says():
    # make demo called straight jeans 男士的牛仔裤 and wrote 方便宝贝活动 for adult harem trousers (2026.12-15)
    jeans = {"类型": ["裤"], "材质": ["牛仔布"], "裤型": ["直筒裤"], "裤长": ["九分裤"]}
    assert {"男士", "男生", "男性", "男装", "男人", "男孩", "绅士", "方便宝贝", "宝贝活动"} <= set(unstated_words(jeans))
    assert "男友" not in unstated_words(jeans)  # 男友风: a women's boyfriend cut
    assert "男士" not in unstated_words(jeans, text="男士直筒牛仔裤")  # its own title says it



def test_a_stated_only_job_invents_no_trim_or_hem_no_attribute_lists():
    # make demo gave a denim jacket 前短后长的版型 and straight jeans 水钻 and 毛须边 (2026.12-16)
    jacket = {"类型": ["上衣"], "材质": ["牛仔布"], "衣样式": ["外套"], "衣款式": ["破洞"]}
    trims = {"前短后长", "水钻", "烫钻", "毛须", "圆环", "金属扣", "铆钉", "珍珠", "贴布", "徽章"}
    assert trims <= set(unstated_words(jacket))
    assert "前短后长" not in unstated_words(jacket, text="前短后长的牛仔外套")  # its own title says it
    assert "珍珠" not in unstated_words({**jacket, "颜色": ["珍珠白"]})  # inside its own colour


def test_a_stated_only_job_names_no_feature_another_products_clause_would_carry_in():
    # make demo's copy from the training copy's clauses gave a denim jacket 假两件, a pinafore a logo,
    # a lace dress 镂空 and linen shorts 插袋 (2026.12-17)
    shorts = {"类型": ["裤"], "材质": ["亚麻"], "裤型": ["阔腿裤"], "裤长": ["短裤"]}
    features = {"假两件", "褶裥", "扣带", "束口", "提花", "logo", "镂空", "插袋", "四合扣", "小花"}
    assert features <= set(unstated_words(shorts))
    assert "镂空" not in unstated_words({"类型": ["裙"], "裙款式": ["勾花镂空"]})  # inside its own value
    assert "logo" not in unstated_words(shorts, text="LOGO刺绣亚麻短裤")  # its own title says it


def test_trousers_that_narrow_at_the_ankle_are_never_given_a_wide_hem():
    # make demo's copy from the clause book gave a 铅笔裤 and 小脚 jeans 宽宽的裤脚轻舞飞扬 (2026.12-18)
    for narrow in ({"类型": ["裤"], "裤型": ["铅笔裤"]}, {"类型": ["裤"], "裤口": ["小脚"]}):
        assert {"宽宽的裤", "宽的裤脚", "裤脚轻舞飞扬"} <= set(excluded_words(narrow))
    assert "宽宽的裤" not in excluded_words({"类型": ["裤"], "裤型": ["阔腿裤"]})


def test_a_hem_drawn_in_is_a_narrow_leg_and_contradicts_straight_jeans():
    # make demo wrote 裤脚处收紧处理 for straight jeans (2026.12-20)
    straight = {"类型": ["裤"], "材质": ["牛仔布"], "裤型": ["直筒裤"]}
    assert contradictions("直筒的裤型，裤脚处收紧处理，修饰腿型。", straight) == ["裤型:裤脚处收紧"]
    assert {"裤脚处收紧", "收紧的裤脚"} <= set(excluded_words(straight))
    assert contradictions("小脚的设计，裤脚收紧，显瘦。", {"类型": ["裤"], "裤口": ["小脚"]}) == []


def test_a_stated_only_job_praises_the_neck_or_face_only_where_the_product_states_a_collar():
    # make demo gave a flared-sleeve chiffon top 恰到好处的修饰了脖颈 and a shirt dress 露出优美的天鹅颈,
    # neither with a collar listed (2026.12-20)
    top = {"类型": ["上衣"], "材质": ["雪纺"], "衣袖型": ["喇叭袖"]}
    assert {"脖颈", "天鹅颈", "颈部", "锁骨", "脸型"} <= set(unstated_words(top))
    assert unstated_found("恰到好处的修饰了脖颈，尽显优雅。", top) == ["脖颈"]
    v_neck = {"类型": ["上衣"], "衣领型": ["v领"]}
    assert not {"脖颈", "天鹅颈", "锁骨"} & set(unstated_words(v_neck))
    assert unstated_found("v领的设计，修饰脖颈线条，露出性感的锁骨。", v_neck) == []
    # and an a-line skirt 高腰的设计，不仅修饰你的肩型: the arm and the shoulder go with a sleeve
    skirt = {"类型": ["裙"], "裙型": ["a字"], "裙腰型": ["高腰"]}
    assert unstated_found("高腰的设计，不仅修饰你的肩型，还能修饰手臂。", skirt) == ["手臂", "肩型"]
    assert unstated_found("喇叭袖的设计，修饰手臂线条。", top) == []
    # and a floral dress 宽宽的腰封, a chiffon top 领角尖尖的
    dress = {"类型": ["裙"], "裙长": ["连衣裙"], "图案": ["碎花"]}
    assert unstated_found("宽宽的腰封，给人一种不同的气场风格。", dress) == ["腰封"]
    assert unstated_found("领角尖尖的，衬托出女性的帅气与干练。", top) == ["领角"]
    trousers = {"类型": ["裤"], "裤型": ["哈伦裤"], "裤腰型": ["松紧腰"]}  # and an adult's 不会勒到萌娃的小肚子
    assert unstated_found("穿着舒适，不会勒到萌娃的小肚子。", trousers) == ["萌娃"]
    jeans = {"类型": ["裤"], "颜色": ["浅蓝色"], "裤型": ["直筒裤"]}  # and adult jeans 使宝贝夏日里穿着更加舒适 (2026.12-22)
    assert unstated_found("清爽透气，使宝贝夏日里穿着更加舒适。", jeans) == ["使宝贝", "透气"]  # no fabric either (2026.12-32)
    # 2026.12-23: a polo shirt 经典的一字版型, a black hoodie 色彩的搭配也很是丰富, a pinafore listing 口袋
    # 加上两个口袋的点缀 (blind readings of make demo's copy)
    polo = {"类型": ["上衣"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    assert unstated_found("经典的一字版型，适合各种身材。", polo) == ["一字"]
    assert unstated_found("一字领的设计，露出锁骨。", {"类型": ["上衣"], "衣领型": ["一字领"]}) == []
    hoodie = {"类型": ["上衣"], "颜色": ["黑色"], "衣样式": ["卫衣"]}
    assert unstated_found("黑色的卫衣，色彩的搭配也很是丰富。", hoodie) == ["色彩的搭配"]
    pinafore = {"类型": ["裙"], "裙型": ["背带裙"], "裙款式": ["口袋"]}
    assert unstated_found("加上两个口袋的点缀，美观实用。", pinafore) == ["两个口袋"]
    assert unstated_found("口袋的设计，美观实用。", pinafore) == []
    lace = {"类型": ["裙"], "材质": ["蕾丝"], "裙领型": ["v领"]}  # and a v-neck lace dress a cinched waist
    assert unstated_found("收束出腰身有种小蛮腰的即视感。", lace) == ["收束出腰", "腰身", "小蛮腰"]  # the waist too: below
    assert unstated_found("束腰的设计，有种小蛮腰的即视感。", {**lace, "裙款式": ["束腰"]}) == []
    # 2026.12-24: a printed chiffon top 俏皮娃娃衫, a denim pinafore 经典的交领设计 (make demo, 2026-12-05, night)
    chiffon = {"类型": ["上衣"], "材质": ["雪纺"], "衣样式": ["雪纺衫"], "图案": ["印花"]}
    assert unstated_found("一款复古风的俏皮娃娃衫，简单的设计。", chiffon) == ["娃娃衫"]
    assert unstated_found("经典的交领设计，可以很好的修饰身材。", pinafore) == ["交领"]
    trench = {"类型": ["上衣"], "衣样式": ["风衣"], "衣领型": ["小立领"], "衣长": ["中长款"]}  # and a trench coat 直身
    assert unstated_found("直身的衣身廓形，加上中长的衣长。", trench) == ["直身"]
    assert unstated_found("裤身不同色系设计，增加了裤子的立体感。", trousers) == ["不同色系"]
    assert unstated_found("两种配色的修饰，为整体增添了不少的时髦度。", {"类型": ["上衣"], "衣样式": ["外套"]}) == ["两种配色"]
    assert unstated_found("而且，设计时使用不同的颜色。", trench) == ["不同的颜色"]
    assert unstated_found("腰部曲线设计，束出纤细腰身。", {"类型": ["裙"], "裙型": ["百褶"]}) == ["束出", "腰身", "细腰", "腰部曲线"]
    # a floral dress 腰部自然的碎褶设计, a cardigan 大大的插兜设计: kept where the listing has 抽褶, 口袋
    assert unstated_found("腰部自然的碎褶设计。", dress) == ["碎褶", "腰部"]
    assert unstated_found("腰部自然的碎褶设计。", {**dress, "裙款式": ["抽褶"], "裙腰型": ["自然腰"]}) == []
    assert unstated_found("大大的插兜设计既美观又实用。", {"类型": ["上衣"], "衣样式": ["开衫"]}) == ["大大的插兜"]
    assert unstated_found("插兜设计既美观又实用。", {"类型": ["上衣"], "衣款式": ["口袋"]}) == []
    # the pockets' size is no listing's (2026.12-27)
    assert unstated_found("大大的插兜设计既美观又实用。", {"类型": ["上衣"], "衣款式": ["口袋"]}) == ["大大的插兜"]


def test_a_stated_only_job_praises_the_waist_only_where_the_product_states_one():
    # make demo gave a lace dress "蕾丝裙摆的设计，展现出女性的纤细腰肢" and a slip dress a waist by its straps
    # (2026-12-05, night): a waist key's value, a value holding 腰 or the product's own text states one
    lace = {"类型": ["裙"], "材质": ["蕾丝"], "裙领型": ["v领"]}
    assert unstated_found("蕾丝裙摆的设计，展现出女性的纤细腰肢。", lace) == ["腰肢", "细腰"]
    assert unstated_found("高腰的设计，勾勒出纤细的腰身。", {"类型": ["裙"], "裙腰型": ["高腰"]}) == []
    assert unstated_found("收腰的设计，勾勒出纤细的腰身。", {"类型": ["裙"], "裙款式": ["收腰"]}) == []
    assert "腰身" in unstated_words(lace)
    assert "腰身" not in unstated_words(lace, text="收腰蕾丝连衣裙")


def test_a_stated_only_job_shows_the_ankle_only_where_a_length_or_leg_opening_does():
    # make demo's full-length wide-leg trousers: "阔腿设计…露出纤细的脚踝" (2026-12-05, late night)
    wide_legs = {"类型": ["裤"], "版型": ["宽松"], "裤型": ["阔腿裤"], "裤腰型": ["高腰"]}
    assert unstated_found("宽松的裤腿，露出纤细的脚踝。", wide_legs) == ["脚踝"]
    assert "脚踝" in unstated_words(wide_legs)
    for states in ({"裤长": ["九分裤"]}, {"裤口": ["小脚"]}, {"裤型": ["哈伦裤"]}, {"裤款式": ["束脚"]}):
        assert unstated_found("宽松的裤腿，露出纤细的脚踝。", {**wide_legs, **states}) == [], states
    assert "脚踝" not in unstated_words({"类型": ["裙"], "裙长": ["中长裙"]})


def test_a_stated_only_job_gives_a_print_of_no_listed_colour_no_hue_its_plain_ground_allows():
    # make demo called a floral chiffon dress listing no colour "纯白的连衣裙": 花纹 reads 纯白 as a plain ground
    floral = {"类型": ["裙"], "材质": ["雪纺"], "图案": ["碎花"], "裙长": ["连衣裙"]}
    assert unstated_found("纯白的连衣裙，清新的碎花。", floral) == ["纯白"]
    assert "纯白" in unstated_words(floral)
    assert unstated_found("纯白的连衣裙，清新的碎花。", {**floral, "颜色": ["白色"]}) == []
    assert unstated_found("纯白的连衣裙，清新的碎花。", floral, said="纯白碎花连衣裙") == []  # its title says so
    # a white product listing no print keeps 纯白色, which 花纹 reads as a plain ground
    assert unstated_found("纯白色的衬衫。", {"类型": ["上衣"], "颜色": ["白色"], "衣样式": ["衬衫"]}) == []


def test_a_stated_only_job_names_a_pocket_only_where_a_value_holds_one():
    # make demo gave a denim jacket listing no pocket "前幅运用了个性的贴袋装饰" (2026.12-26)
    jacket = {"类型": ["上衣"], "材质": ["牛仔布"], "衣样式": ["外套"], "衣款式": ["破洞"]}
    assert unstated_found("前幅运用了个性的贴袋装饰。", jacket) == ["贴袋"]
    assert unstated_parts_named("前幅运用了个性的贴袋装饰", jacket) == ["贴袋"]
    for states in ({"衣款式": ["口袋"]}, {"裤款式": ["斜插袋"]}, {"衣款式": ["插兜"]}):
        assert unstated_found("前幅运用了个性的贴袋装饰。", {**jacket, **states}) == [], states
        assert unstated_parts_named("前幅运用了个性的贴袋装饰", {**jacket, **states}) == [], states
    assert unstated_parts_named("前幅运用了个性的贴袋装饰", jacket, said="贴袋牛仔外套") == []  # its own text says so
    assert unstated_parts_named("简约大方", jacket) == []


def test_a_stated_only_job_gives_no_detachable_webbing_no_listing_names():
    # make demo gave a printed chiffon top "下摆增添可拆卸织带装饰" (2026.12-26)
    top = {"类型": ["上衣"], "材质": ["雪纺"], "图案": ["印花"], "衣袖型": ["喇叭袖"]}
    assert unstated_found("袖口增添可拆卸织带装饰。", top) == ["可拆卸", "织带"]
    assert unstated_found("袖口增添可拆卸织带装饰。", top, said="可拆卸织带雪纺衫") == []  # its title says so


def test_a_stated_only_job_describes_no_hem_back_or_lining_the_product_states_nothing_of():
    # make demo gave a hoodie "衣摆平整" in 4 seeded jobs of 8, a cotton shirt "后背的分割处理" in 5 and a
    # floral chiffon dress "在连衣裙里面增加了内衬的设计" (2026.12-31)
    hoodie = {"颜色": ["黑色"], "风格": ["休闲"], "衣样式": ["卫衣"], "衣款式": ["连帽", "口袋"]}
    shirt = {"类型": ["上衣"], "颜色": ["白色"], "材质": ["棉"], "衣样式": ["衬衫"], "衣领型": ["翻领"]}
    dress = {"类型": ["裙"], "材质": ["雪纺"], "图案": ["碎花"], "裙长": ["连衣裙"]}
    assert unstated_found("衣摆平整，简约大方。", hoodie) == ["衣摆"]
    assert unstated_parts_named("干净利落的下摆", shirt) == ["下摆"]
    assert unstated_found("后背的分割处理。", shirt) == ["后背"]
    assert unstated_parts_named("优化背部线条", shirt) == []  # the body: blocked, yet it describes no part
    assert "背部" in unstated_words(shirt)
    assert unstated_found("在连衣裙里面增加了内衬的设计。", dress) == ["内衬"]
    assert unstated_found("采用的是棉质的抓绒面料。", shirt) == ["抓绒"]  # a fleece, which no listing states
    # a hem is stated by a value under 裙下摆 or one holding a hem's mark; the back by 露背; its own text says so
    for states in ({"裙下摆": ["开叉"]}, {"衣款式": ["荷叶边"]}, {"衣款式": ["不规则"]}, {"裙型": ["大裙摆"]}):
        assert unstated_found("衣摆平整，简约大方。", {**hoodie, **states}) == [], states
    assert unstated_found("后背的分割处理。", {**dress, "裙款式": ["露背"]}) == []
    assert unstated_found("衣摆平整，简约大方。", hoodie, said="弧形下摆连帽卫衣") == []
    assert unstated_found("裙摆的设计，飘逸灵动。", dress) == []  # a skirt's body is no stated detail


def test_shorts_are_never_called_long():
    # make demo called linen wide-leg shorts "一件长度比较长的阔腿裤", a clause written for wide-leg trousers
    # listing no length (2026.12-31)
    shorts = {"类型": ["裤"], "材质": ["亚麻"], "裤型": ["阔腿裤"], "裤长": ["短裤"]}
    assert contradictions("一件长度比较长的阔腿裤", shorts) == ["裤长:长度比较长"]
    assert "长度比较长" in excluded_words(shorts)
    assert contradictions("一件长度比较长的阔腿裤", {"类型": ["裤"], "裤型": ["阔腿裤"]}) == []
    assert contradictions("而且这款长度是比较长的", {**shorts, "裤长": ["九分裤"]}) == []


def test_a_stated_only_job_claims_no_fabric_function_nor_two_way_wear_no_listing_names():
    # make demo gave elastic-waist harem trousers "这款裤子采用了优质的速干面料打造" in every job, and a
    # denim jacket "前后两穿设计" (2026.12-27)
    trousers = {"类型": ["裤"], "风格": ["休闲"], "裤型": ["哈伦裤"], "裤腰型": ["松紧腰"]}
    assert unstated_found("这款裤子采用了优质的速干面料打造。", trousers) == ["速干", "面料"]  # nor a fabric (2026.12-32)
    assert set(unstated_found("防晒又防水，抗皱免烫。", trousers)) == {"防晒", "防水", "抗皱", "免烫"}
    assert unstated_found("前后两穿设计。", {"类型": ["上衣"], "衣样式": ["外套"]}) == ["两穿"]
    assert unstated_found("这款裤子采用了优质的速干面料打造。", trousers, said="速干哈伦裤") == ["面料"]  # its title says so
    assert unstated_found("这款裤子采用了优质的速干面料打造。", trousers, said="速干面料哈伦裤") == []  # ... and the fabric
    assert unstated_found("棉质面料，透气舒适。", {**trousers, "材质": ["棉"]}) == []  # what any cotton does


def test_a_stated_only_job_names_a_waistband_only_where_the_waist_is_stated():
    # make demo gave a v-neck lace dress "腰头没有多余装饰" and suit trousers "裤子的腰头设计的很精致" (2026.12-27)
    dress = {"类型": ["裙"], "材质": ["蕾丝"], "裙领型": ["v领"], "裙长": ["连衣裙"]}
    assert unstated_found("腰头没有多余装饰。", dress) == ["腰头"]
    assert unstated_parts_named("腰头没有多余装饰", dress) == ["腰头"]
    for waist in ({"裤腰型": ["松紧腰"]}, {"裙腰型": ["高腰"]}, {"裙款式": ["收腰"]}):
        assert unstated_found("腰头没有多余装饰。", {**dress, **waist}) == [], waist



def test_a_stated_only_job_gives_no_back_fastening_nor_big_pockets_no_listing_names():
    # make demo gave a pinafore "后背系扣的设计" and a hoodie listing 口袋 "搭配大大的口袋" (2026.12-27)
    pinafore = {"类型": ["裙"], "材质": ["牛仔布"], "裙型": ["背带裙"], "裙款式": ["口袋"]}
    assert unstated_found("后背系扣的设计，方便穿脱。", pinafore) == ["系扣", "后背"]  # the back too (2026.12-31)
    assert unstated_found("后背系扣的设计，方便穿脱。", {**pinafore, "裙衣门襟": ["单排扣"]}) == ["后背"]
    assert unstated_found("搭配大大的口袋，美观实用。", pinafore) == ["大大的口袋"]
    assert unstated_found("搭配口袋，美观实用。", pinafore) == []

    # a motif no listing names: "同时采用了碎花星星的装饰" went to a floral chiffon dress (2026.12-27)
    floral = {"类型": ["裙"], "材质": ["雪纺"], "图案": ["碎花"], "裙长": ["连衣裙"]}
    assert unstated_found("同时采用了碎花星星的装饰。", floral) == ["星星"]
    assert unstated_found("同时采用了碎花星星的装饰。", floral, said="星星碎花连衣裙") == []  # its title says so

    # a belt loop in words of two characters, which blocking can stop: make demo gave a polo shirt
    # "肩部增添的袢带" though 袢 was a detail, being one character (2026.12-30)
    polo = {"类型": ["上衣"], "图案": ["条纹"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    assert {"袢带", "腰袢", "袖袢", "肩袢"} <= set(unstated_words(polo))
    assert unstated_found("休闲又不失几分精致感，肩部增添的袢带。", polo) == ["袢带"]

    # denim blue is a colour: make demo gave a pinafore listing none "牛仔蓝的颜色" (2026.12-30); a compound,
    # blocked and never flagged, as 6 of the 17 references with a colour that say it list no blue
    pinafore = {"类型": ["裙"], "材质": ["牛仔布"], "风格": ["休闲"], "裙型": ["背带裙"], "裙款式": ["口袋"]}
    assert "牛仔蓝" in unstated_words(pinafore)
    assert "牛仔蓝" in excluded_words({**pinafore, "颜色": ["白色"]})
    assert "牛仔蓝" not in excluded_words({**pinafore, "颜色": ["浅蓝色"]})
    assert contradictions("当满大街都在穿牛仔蓝外套时", {**pinafore, "颜色": ["红色"]}) == []


def test_a_stated_only_job_gives_no_flutter_sleeve_nor_vest_to_a_product_stating_no_sleeve():
    # make demo gave a white shirt dress "小飞袖荷叶边设计" and "版型上采用合身背心款式" (2026.12-27)
    shirt_dress = {"颜色": ["白色"], "风格": ["通勤"], "裙型": ["衬衫裙"], "裙下摆": ["荷叶边"]}
    assert unstated_found("小飞袖荷叶边设计，版型上采用合身背心款式。", shirt_dress) == ["飞袖", "背心"]
    assert unstated_found("背心的设计，清爽宜人。", {"类型": ["上衣"], "衣样式": ["背心"]}) == []  # a vest says it
    assert unstated_found("小飞袖的设计。", {"类型": ["上衣"], "衣袖型": ["荷叶袖"]}) == []  # a sleeve is stated


def test_a_chiffon_is_never_called_crisp():
    # make demo gave a chiffon top "上身挺括有型" and "让整体的版型挺括起来" (2026.12-27); none of the 156
    # chiffon references says 挺括 or 硬挺
    chiffon = {"类型": ["上衣"], "材质": ["雪纺"], "图案": ["印花"]}
    assert contradictions("雪纺面料，上身挺括有型。", chiffon) == ["材质:挺括"]
    assert "挺括" in excluded_words(chiffon)
    assert contradictions("棉质面料，上身挺括有型。", {"类型": ["上衣"], "材质": ["棉"]}) == []
    assert contradictions("上身挺括有型。", {"类型": ["上衣"]}) == []


def test_a_stated_only_job_gives_trousers_no_sleeve_their_own_values_lead_to():
    # led toward their 不对称, validation trousers were given "不对称的肩袖个性十足" (2026.12-26)
    trousers = {"类型": ["裤"], "裤款式": ["不对称"], "裤长": ["九分裤"]}
    assert unstated_found("不对称的肩袖个性十足。", trousers) == ["肩袖"]
    assert unstated_found("不对称的肩袖个性十足。", {"类型": ["上衣"], "衣袖型": ["落肩袖"], "衣款式": ["不对称"]}) == []


def test_a_stated_only_job_names_no_part_of_the_garment_the_product_states_nothing_of():
    # make demo's copy from the clause book gave a pinafore 袖口的收紧设计, a denim jacket 圆形的领口,
    # a chiffon top 开扣 and a sweatshirt 小象图案 (2026.12-19)
    pinafore = {"类型": ["裙"], "材质": ["牛仔布"], "裙型": ["背带裙"]}
    assert {"袖口", "袖子", "领口", "衣领", "门襟", "开扣", "图案"} <= set(unstated_words(pinafore))
    blouse = {"类型": ["上衣"], "衣袖型": ["喇叭袖"], "衣领型": ["v领"], "图案": ["印花"]}
    assert not {"袖口", "领口", "图案"} & set(unstated_words(blouse))  # it states a sleeve, a collar, a print
    assert "门襟" in unstated_words(blouse)
    assert "领口" not in unstated_words(pinafore, text="方领口背带裙")  # its own title says it
    assert unstated_found("袖口的收紧设计，时尚减龄。", pinafore) == ["袖口"]
    assert unstated_found("喇叭袖口的设计，尽显优雅。", blouse) == []
    assert {"前襟", "一粒钮"} <= set(unstated_words(blouse))
    # and gave a polo shirt 两件套, skirts 工整的车线 and a 半身裙 胸前人像英文字母
    details = {"两件套", "斜插", "明线", "车线", "双层", "薄纱", "叠襟", "风琴褶", "滚边", "按扣", "字母", "两层", "型男", "妈妈"}
    assert details <= set(unstated_words(pinafore))
    assert "字母" not in unstated_words({"类型": ["上衣"], "图案": ["字母"]})  # its own print


def test_a_skirt_is_not_called_a_top_and_denim_or_suiting_is_not_rayon():
    # make demo's copy from the clause book called a 中长裙 这款短外套, gave straight jeans and suiting
    # trousers 粘纤面料 and a 小立领 trench coat a 棒球领 (2026.12-19)
    skirt = {"类型": ["裙"], "颜色": ["墨绿色"], "裙型": ["百褶"], "裙长": ["中长裙"]}
    assert contradictions("这款短外套，中长裙的设计更显文艺", skirt) == ["类型:短外套"]
    assert "这款短外套" in excluded_words(skirt)
    assert contradictions("这款中长裙外搭一件牛仔外套", skirt) == []  # the skirt first: worn with a jacket
    assert contradictions("外搭一件牛仔外套", skirt) == [] and contradictions("衬衫式的连衣裙", skirt) == []
    assert contradictions("这款连衣裙，衬衫领", {"类型": ["上衣"], "衣样式": ["衬衫"]}) == []  # a top may be a dress
    jeans = {"类型": ["裤"], "材质": ["牛仔布"], "裤型": ["直筒裤"]}
    assert contradictions("选用了优质的粘纤面料", jeans) == ["材质:粘纤"] and "粘纤" in excluded_words(jeans)
    suiting = {"类型": ["裤"], "材质": ["西装面料"], "裤型": ["铅笔裤"]}
    assert "粘纤" in unstated_words(suiting)  # a fabric that names no fibre: a stated_only job names none
    assert contradictions("粘纤面料，垂感好", {"类型": ["裤"], "材质": ["混纺"]}) == []  # a blend may be anything
    trench = {"类型": ["上衣"], "衣样式": ["风衣"], "衣领型": ["小立领"]}
    assert contradictions("这款棒球领风衣", trench) == ["衣领型:棒球领"]
    assert "丹宁面料" in unstated_words(trench)  # it names no fabric: a trench coat got 含棉量很高的丹宁面料
    assert contradictions("丹宁面料", {**trench, "材质": ["涤纶"]}) == ["材质:丹宁面料"]
    assert coverage("丹宁面料，挺括有型", {"材质": ["牛仔布"]}) == 1.0  # 丹宁 is denim
    pencil = {"类型": ["裤"], "材质": ["西装面料"], "裤型": ["铅笔裤"]}
    assert contradictions("宽边裤以形式呈现。裤腿使用了灯笼形的外形轮廓设计", pencil) == ["裤型:宽边裤", "裤型:灯笼形"]
    assert contradictions("灯笼形的裤腿", {"类型": ["裤"], "裤型": ["哈伦裤"]}) == []
    polo = {"类型": ["上衣"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    assert contradictions("polo领的设计，采用经典圆形的领口设计", polo) == ["衣领型:圆形的领口"]


def test_a_stated_only_job_does_not_call_a_skirt_of_no_stated_kind_a_dress():
    # make demo's copy called a 文艺百褶中长裙 (裙长 中长裙: a length, neither dress nor skirt) 这款连衣裙
    midi = {"类型": ["裙"], "颜色": ["墨绿色"], "裙型": ["百褶"], "裙长": ["中长裙"]}
    assert {"连衣裙", "半身裙", "背带裙"} <= set(unstated_words(midi))
    assert unstated_found("这款连衣裙，中长裙的设计更显文艺", midi) == ["连衣裙"]
    assert "连衣裙" not in unstated_words(midi, text="文艺百褶中长连衣裙")  # its own title says so
    assert "连衣裙" not in unstated_words({"类型": ["裙"], "裙长": ["连衣裙"]})
    assert "连衣裙" not in unstated_words({"类型": ["裙"], "颜色": ["黑色"]})  # no kind given at all: left alone
    assert "衬衫" not in unstated_words({"类型": ["上衣"], "衣样式": ["衫"]})  # a 衫 may be anything


def test_a_stated_only_job_claims_no_fabric_the_product_states_nothing_of():
    # make demo gave 15 of the 54 rank-1 copies of products listing no fabric one in three seeded jobs:
    # "精选优质的面料，亲肤舒适透气性好" for a striped polo shirt, "采用优质的面料制作" for a plaid slip dress (2026.12-32)
    polo = {"类型": ["上衣"], "风格": ["休闲"], "图案": ["条纹"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    assert unstated_found("精选优质的面料，亲肤舒适透气性好。", polo) == ["面料", "透气", "亲肤"]
    assert unstated_found("表面泛着微微光泽感。", polo) == ["光泽"]  # a sheen too (2026.12-33: the pleated skirt's)
    assert unstated_found("表面泛着微微光泽感。", {**polo, "材质": ["丝绒"]}) == []
    assert unstated_parts_named("精选优质的面料，亲肤舒适透气性好", polo) == ["面料"]  # what it gives is no part
    assert {"材质", "布料", "柔软", "手感"} <= set(unstated_words(polo))
    # a fabric is stated by a value under 材质, a value holding a fibre or fabric, or the product's own text
    for states in ({"材质": ["棉"]}, {"衣样式": ["针织衫"]}, {"衣样式": ["毛衣"]}, {"材质": ["西装面料"]}):
        assert unstated_found("精选优质的面料，亲肤舒适透气性好。", {**polo, **states}) == [], states
    assert unstated_found("精选优质的面料，亲肤舒适透气性好。", polo, said="纯棉条纹polo衫") == []
    assert unstated_found("穿着舒适，简约大方。", polo) == []  # comfort is any garment's


def test_a_stated_only_job_gives_no_pleats_cut_or_finish_no_listing_names():
    # make demo gave wide-leg trousers "腰身打褶装饰" in 5 of 8 seeded jobs and a plaid slip dress
    # "采用立体的裁剪方式使裙身更加贴合身材" in 6 of 8, then "采用立体胸型设计" (2026.12-32)
    trousers = {"类型": ["裤"], "版型": ["宽松"], "裤型": ["阔腿裤"], "裤腰型": ["高腰"]}
    dress = {"类型": ["裙"], "图案": ["格子"], "风格": ["复古"], "裙款式": ["吊带"], "裙长": ["连衣裙"]}
    assert unstated_found("宽松舒适，腰身打褶装饰。", trousers) == ["打褶"]
    assert unstated_found("采用立体的裁剪方式使裙身更加贴合身材。", dress) == ["立体的裁剪"]
    assert unstated_found("采用立体胸型设计。", dress) == ["胸型"]
    assert unstated_found("采用对格剪裁，裤脚的收边显得精致内敛，钉钻点缀。", dress) == ["对格", "收边", "钉钻"]
    # a product listing 版型#立体剪裁 says it in any of its words, and its coverage reads them
    cut = {**dress, "版型": ["立体剪裁"]}
    assert unstated_found("采用立体的裁剪方式使裙身更加贴合身材。", cut) == []
    assert coverage("采用立体的裁剪方式", {"版型": ["立体剪裁"]}) == 1.0


def test_a_stated_only_job_gives_no_stripe_direction_tucks_trims_or_shades_no_listing_names():
    # make demo gave a striped polo shirt "经典竖条纹元素的加入", jeans and linen shorts 捏褶 and 修边, and a
    # plaid slip dress "复古的盘口" (2026.12-33)
    polo = {"类型": ["上衣"], "风格": ["休闲"], "图案": ["条纹"], "衣样式": ["polo"], "衣领型": ["polo领"]}
    assert unstated_found("经典竖条纹元素的加入，打造出一种成熟的魅力。", polo) == ["竖条纹"]
    assert unstated_found("裤脚修边，捏褶装饰，复古的盘口。", polo) == ["修边", "捏褶", "盘口"]
    assert unstated_found("条纹的设计，休闲随性。", polo) == []  # the stripe itself is the product's
    assert unstated_found("经典竖条纹元素的加入。", polo, said="竖条纹休闲polo衫") == []  # a title that says so keeps it
    # ... shoulder buttons, a distressed finish, a bound edge, a raised texture and a nude grey, none listed
    assert unstated_found("肩扣设计穿脱非常方便，做旧的效果，包边设计，凹凸纹理。", polo) == ["做旧", "凹凸纹理", "包边", "肩扣"]
    cardigan = {"类型": ["上衣"], "版型": ["宽松"], "材质": ["针织"], "衣样式": ["开衫"], "颜色": ["灰色", "米白色"]}
    assert unstated_found("衣身采用浪漫的裸灰色。", cardigan) == ["裸灰"]
    assert unstated_found("灰色的衣身，百搭耐看。", cardigan) == []


def test_a_stated_only_job_gives_no_panel_a_line_cut_shades_or_whiskering_no_listing_names():
    # make demo gave a dark-green pleated skirt "裙身添加绿色插片设计" in eight jobs of eight and a plaid slip dress
    # "裙身a版的设计" in four (2026.12-34)
    pleated = {"类型": ["裙"], "颜色": ["墨绿色"], "风格": ["文艺"], "裙型": ["百褶"], "裙长": ["中长裙"]}
    slip = {"类型": ["裙"], "图案": ["格子"], "风格": ["复古"], "裙款式": ["吊带"], "裙长": ["连衣裙"]}
    assert unstated_found("裙身添加绿色插片设计，行走间飘逸动人。", pleated) == ["插片"]
    assert unstated_found("裙身a版的设计，在视觉上拉长身材比例。", slip) == ["a版"]
    assert unstated_found("裙身a版的设计。", {"类型": ["裙"], "裙型": ["a字"]}) == []  # an a-line skirt's own
    # ... nor light-blue jeans two shades, nor wide-leg trousers whiskering
    jeans = {"类型": ["裤"], "颜色": ["浅蓝色"], "材质": ["牛仔布"], "裤型": ["直筒裤"], "裤长": ["九分裤"]}
    assert unstated_found("加上深浅蓝色的配色，裤身的猫须设计。", jeans) == ["深浅", "猫须"]


def test_a_stated_only_job_claims_no_fashion_of_this_year_or_season():
    # "格子图案是今年比较流行的元素" went to make demo's plaid slip dress in 4 of 8 seeded short jobs (2026.12-35)
    slip = {"类型": ["裙"], "图案": ["格子"], "风格": ["复古"], "裙款式": ["吊带"], "裙长": ["连衣裙"]}
    assert unstated_found("格子图案是今年比较流行的元素。", slip) == ["今年"]
    assert unstated_found("运用时下流行的撞色元素，本季主打。", slip) == ["时下", "本季"]
    assert unstated_found("格子图案经典耐看。", slip) == []


def test_a_stated_only_job_speaks_of_no_colour_the_product_states_nothing_of():
    # make demo gave 15 of the 88 rank-1 copies of products stating no colour one: "采用基础色系打底" for a
    # plaid slip dress, "清新淡雅的颜色" for linen shorts (2026.12-32)
    dress = {"类型": ["裙"], "图案": ["格子"], "风格": ["复古"], "裙款式": ["吊带"], "裙长": ["连衣裙"]}
    shorts = {"类型": ["裤"], "材质": ["亚麻"], "裤型": ["阔腿裤"], "裤长": ["短裤"]}
    assert unstated_found("采用基础色系打底，复古的色泽更加增添了整体的时尚气息。", dress) == ["色系", "色泽"]
    assert unstated_found("清新淡雅的颜色给人舒适自然的感觉。", shorts) == ["颜色"]
    # a colour is stated by a value under 颜色, a value holding 色 (撞色, 纯色) or the product's own text
    for states in ({"颜色": ["白色"]}, {"图案": ["撞色"]}, {"图案": ["纯色"]}):
        assert unstated_found("清新淡雅的颜色给人舒适自然的感觉。", {**shorts, **states}) == [], states
    assert unstated_found("清新淡雅的颜色给人舒适自然的感觉。", shorts, said="米色亚麻短裤") == []
