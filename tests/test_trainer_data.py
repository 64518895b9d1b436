"""Training data in: readers (AdvertiseGen, KOBE, merchant tables, plain text) and preparation
(redaction, filters, de-duplication, the seeded split)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest

from copygen.prompt import SOURCE_JOINER
from copygen.similarity import char_ngrams, jaccard
from trainer.clean import SHINGLE, prepare_pairs, prepare_texts, split_side
from trainer.data import MAX_BAD_ROWS_SHOWN, DataError, Pair, parse_content, read_pairs, read_texts

DATA = Path(__file__).parent / "data"
SAMPLE = Path(__file__).parent.parent / "samples" / "advertisegen_sample.jsonl"
MIXED = DATA / "advertisegen_mixed.jsonl"


# --- AdvertiseGen ---------------------------------------------------------------------------


def test_advertisegen_rows_become_ad_pairs_with_normalised_attribute_sources():
    pairs, report = read_pairs(MIXED)

    assert pairs == [
        Pair("类型#裤*版型#宽松*图案#复古*图案#线条", "宽松的阔腿裤，复古的线条图案，上身随性又显腿长。", "ad",
             f"{MIXED}:1"),
        Pair("类型#裙*颜色#白色", "这款白色连衣裙清新，的设计很特别。", "ad", f"{MIXED}:2",
             ("这款白色连衣裙清新", "的设计很特别")),
        # spaces around '#', a trailing '*', full-width letters and a zero-width space are normalised
        Pair("类型#上衣*颜色#黑色", "黑色上衣，ABC123款，简约百搭。", "ad", f"{MIXED}:11"),
    ]
    assert report["files"] == [
        {"path": str(MIXED), "format": "advertisegen", "encoding": "utf-8", "rows": 10, "pairs": 3, "bad": 7}
    ]
    assert report["rows"] == 10 and report["pairs"] == 3


def test_bad_advertisegen_rows_are_reported_with_file_line_and_reason():
    _, report = read_pairs(MIXED)

    assert report["bad"] == 7
    assert report["bad_by_reason"] == {
        "brand_placeholder": 1, "invalid_json": 1, "missing_key": 1, "wrong_type": 2, "empty": 1,
        "bad_attributes": 1,
    }
    lines = {row.split(": ")[0]: row for row in report["bad_rows"]}
    assert set(lines) == {f"{MIXED}:{n}" for n in (3, 4, 5, 6, 8, 9, 10)}
    assert lines[f"{MIXED}:4"].startswith(f"{MIXED}:4: invalid_json")
    assert "key 'summary'" in lines[f"{MIXED}:5"] and "missing_key" in lines[f"{MIXED}:5"]
    assert "wrong_type" in lines[f"{MIXED}:6"] and "int" in lines[f"{MIXED}:6"]
    assert "empty" in lines[f"{MIXED}:8"]
    assert "bad_attributes" in lines[f"{MIXED}:9"] and "类型裙" in lines[f"{MIXED}:9"]
    assert "wrong_type" in lines[f"{MIXED}:10"]


def test_unk_literals_are_removed_and_counted_and_their_rows_kept():
    pairs, report = read_pairs(MIXED)

    assert report["unk_removed"] == 3 and report["unk_rows"] == 1
    assert not any("<UNK>" in p.copy for p in pairs)
    assert any(p.origin.endswith(":2") for p in pairs)


def test_the_clauses_that_lost_a_character_to_unk_are_kept_on_the_pair_through_preparation():
    pairs, _ = read_pairs(MIXED)
    (torn,) = [p for p in pairs if p.origin.endswith(":2")]
    assert torn.copy == "这款白色连衣裙清新，的设计很特别。"
    assert torn.torn == ("这款白色连衣裙清新", "的设计很特别")  # as the copy has them, for the clause book
    assert all(p.torn == () for p in pairs if p is not torn)
    train, _, _ = prepare_pairs(pairs, seed=0, val_fraction=0.0)
    assert [p.torn for p in train if p.origin == torn.origin] == [torn.torn]


def test_rows_whose_summary_names_brand_are_dropped_so_brand_never_reaches_a_merchant():
    pairs, report = read_pairs(MIXED)

    assert not any("BRAND" in p.copy for p in pairs)
    assert f"{MIXED}:3: brand_placeholder" in report["bad_rows"][0]


def test_the_shipped_sample_drops_its_brand_rows_and_keeps_its_unk_rows_without_unk():
    pairs, report = read_pairs(SAMPLE)
    raw = [json.loads(line)["summary"] for line in SAMPLE.read_text(encoding="utf-8").splitlines()]

    assert report["rows"] == 300 == len(raw)
    assert report["bad_by_reason"] == {"brand_placeholder": sum("BRAND" in s for s in raw)}
    assert len(pairs) == 300 - sum("BRAND" in s for s in raw)
    assert report["unk_rows"] == sum("<UNK>" in s for s in raw if "BRAND" not in s)
    assert all("<UNK>" not in p.copy and "BRAND" not in p.copy for p in pairs)
    assert all(p.style == "ad" and p.source.startswith("类型#") for p in pairs)


def test_repeated_attribute_keys_keep_every_value_in_order():
    assert parse_content("类型#上衣*图案#复古*颜色#白色*图案#线条") == {
        "类型": ["上衣"], "图案": ["复古", "线条"], "颜色": ["白色"]
    }
    with pytest.raises(ValueError, match="not key#value"):
        parse_content("类型#上衣*颜色白色")


def test_a_gbk_file_is_decoded_as_gbk_and_the_report_says_so(tmp_path):
    gbk = tmp_path / "train.gbk.json"
    gbk.write_bytes(SAMPLE.read_text(encoding="utf-8").replace("\n", "\r\n").encode("gbk"))

    pairs, report = read_pairs(gbk)
    utf8_pairs, _ = read_pairs(SAMPLE)

    assert [(p.source, p.copy) for p in pairs] == [(p.source, p.copy) for p in utf8_pairs]
    assert report["files"][0]["encoding"] == "gbk"
    assert len(report["notes"]) == 1 and str(gbk) in report["notes"][0] and "GBK" in report["notes"][0]


def test_a_file_that_is_neither_utf8_nor_gbk_raises_a_data_error_naming_it(tmp_path):
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"content": "\xff\xfe\xff"}\n')

    with pytest.raises(DataError, match=f"{path}.*neither UTF-8"):
        read_pairs(path)


def test_a_file_with_no_valid_json_line_raises_a_data_error_naming_it(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("this is not json\nnor this\n", encoding="utf-8")

    with pytest.raises(DataError, match=f"{path}: not JSON Lines.*line 1"):
        read_pairs(path)


def test_a_missing_file_raises_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match="nowhere.json: no such file"):
        read_pairs(tmp_path / "nowhere.json")


def test_more_bad_rows_than_shown_are_all_counted(tmp_path):
    path = tmp_path / "many.jsonl"
    good = json.dumps({"content": "类型#裙", "summary": "一条好裙子，穿上很好看。"}, ensure_ascii=False)
    path.write_text("\n".join([good] + ["{oops"] * 120), encoding="utf-8")

    pairs, report = read_pairs(path)

    assert len(pairs) == 1
    assert report["bad"] == 120 and report["bad_by_reason"] == {"invalid_json": 120}
    assert len(report["bad_rows"]) == MAX_BAD_ROWS_SHOWN
    assert report["bad_rows"][0].startswith(f"{path}:2: invalid_json")


# --- merchant JSON Lines, CSV and Excel ---------------------------------------------------------


def test_json_lines_without_advertisegen_keys_need_named_columns(tmp_path):
    path = tmp_path / "shop.jsonl"
    rows = [{"title": "纯棉T恤", "copy": "纯棉T恤，透气柔软，夏天必备。"}, {"title": "围巾"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")

    with pytest.raises(DataError, match="name the input_column and output_column"):
        read_pairs(path)
    with pytest.raises(DataError, match="no row has column 'text'"):
        read_pairs(path, input_column="title", output_column="text")

    pairs, report = read_pairs(path, input_column="title", output_column="copy", style="description")
    assert pairs == [Pair("纯棉T恤", "纯棉T恤，透气柔软，夏天必备。", "description", f"{path}:1")]
    assert report["bad_rows"] == [f"{path}:2: missing_key (column 'copy')"]


def test_csv_input_columns_are_joined_and_bad_rows_named_by_spreadsheet_row():
    path = DATA / "merchant.csv"

    pairs, report = read_pairs(path, input_column="标题, 卖点", output_column="文案")

    assert pairs == [
        Pair(f"纯棉T恤{SOURCE_JOINER}透气,柔软", "这件纯棉T恤透气柔软，夏天穿很舒服。", "ad", f"{path}:2"),
        Pair("真丝围巾", "真丝围巾，光泽柔和，送礼自用都合适。", "ad", f"{path}:3"),
    ]
    assert report["bad_by_reason"] == {"empty": 2}
    assert [row.split(": ")[0] for row in report["bad_rows"]] == [f"{path}:4", f"{path}:5"]
    assert report["files"][0]["format"] == "table"


def test_a_gbk_csv_reads_like_its_utf8_twin(tmp_path):
    path = tmp_path / "merchant.csv"
    path.write_bytes((DATA / "merchant.csv").read_text(encoding="utf-8").encode("gbk"))

    pairs, report = read_pairs(path, input_column=["标题"], output_column="文案")

    assert pairs[0].copy == "这件纯棉T恤透气柔软，夏天穿很舒服。"
    assert report["files"][0]["encoding"] == "gbk" and report["notes"]


def test_a_missing_csv_column_raises_a_data_error_naming_file_and_column():
    path = DATA / "merchant.csv"
    with pytest.raises(DataError, match=f"{path}: no column '描述'"):
        read_pairs(path, input_column="标题,描述", output_column="文案")
    with pytest.raises(DataError, match="needs input_column and output_column"):
        read_pairs(path)


def test_excel_sheets_read_with_named_columns_and_the_given_style(tmp_path):
    path = tmp_path / "shop.xlsx"
    pd.DataFrame(
        {"商品": ["羊毛大衣", "保温杯", ""], "编号": [1, 2, 3],
         "描述": ["羊毛大衣，保暖有型，秋冬必备。", "", "没有商品的描述。"]}
    ).to_excel(path, index=False)

    pairs, report = read_pairs(path, input_column="商品", output_column="描述", style="description")

    assert pairs == [Pair("羊毛大衣", "羊毛大衣，保暖有型，秋冬必备。", "description", f"{path}:2")]
    assert [row.split(": ")[0] for row in report["bad_rows"]] == [f"{path}:3", f"{path}:4"]
    with pytest.raises(DataError, match=f"{path}: no column '文案'"):
        read_pairs(path, input_column="商品", output_column="文案")


def test_an_unknown_style_or_a_text_file_is_refused():
    with pytest.raises(DataError, match="style must be one of"):
        read_pairs(DATA / "merchant.csv", input_column="标题", output_column="文案", style="poem")
    with pytest.raises(DataError, match="read_texts"):
        read_pairs(DATA / "texts.txt")


# --- Taobao KOBE ------------------------------------------------------------------------------


def test_kobe_source_lines_pair_with_target_lines_with_the_tags_stripped():
    src = DATA / "kobe" / "test.src.str"

    for given in (DATA / "kobe", src, DATA / "kobe" / "test.tgt.str"):
        pairs, report = read_pairs(given)
        assert pairs == [
            Pair("小提琴初学者入门", "适合初学者的入门小提琴，音色温暖。", "description", f"{src}:1"),
            Pair("真皮手拿包女", "头层牛皮，柔软有弹性，易保养。", "description", f"{src}:2"),
        ]
    assert report["rows"] == 4
    assert report["bad_rows"] == [
        f"{src}:3: missing_tags (expected '<aspect> <user-category> title...')",
        f"{DATA / 'kobe' / 'test.tgt.str'}:4: empty (description)",
    ]


def test_kobe_files_with_different_line_counts_raise_a_data_error(tmp_path):
    shutil.copy(DATA / "kobe" / "test.src.str", tmp_path / "test.src.str")
    (tmp_path / "test.tgt.str").write_text("只 有 一 行 。\n", encoding="utf-8")

    with pytest.raises(DataError, match="4 lines but .*test.tgt.str has 1"):
        read_pairs(tmp_path)


def test_a_kobe_source_without_its_target_raises_a_data_error(tmp_path):
    shutil.copy(DATA / "kobe" / "test.src.str", tmp_path / "test.src.str")
    with pytest.raises(DataError, match="test.tgt.str: no such file"):
        read_pairs(tmp_path / "test.src.str")


# --- plain text -------------------------------------------------------------------------------


def test_plain_text_gives_one_normalised_text_per_non_empty_line(tmp_path):
    texts, report = read_texts(DATA / "texts.txt")
    assert texts == ["新品上市，这款连衣裙采用雪纺面料，轻盈飘逸。", "秋冬必备的羊毛大衣，保暖又有型。"]
    assert report["rows"] == 2 and report["texts"] == 2 and report["bad"] == 0

    (tmp_path / "a.txt").write_text("ＡＢＣ 全角字母\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("第二个文件\r\n".encode("gbk"))
    texts, report = read_texts(tmp_path)
    assert texts == ["ABC 全角字母", "第二个文件"]
    assert [f["encoding"] for f in report["files"]] == ["utf-8", "gbk"]

    with pytest.raises(DataError, match="read_pairs"):
        read_texts(DATA / "merchant.csv")


# --- preparation: redaction, filters, de-duplication, split -------------------------------------


def _pair(source: str, copy: str, n: int = 0) -> Pair:
    return Pair(source, copy, "ad", f"test:{n}")


def _copy(rng: random.Random, n: int = 60) -> str:
    return "".join(chr(rng.randint(0x4E00, 0x4E00 + 2000)) for _ in range(n))


def test_prepare_pairs_redacts_sources_and_copies_and_counts_each_kind():
    pairs = [_pair("类型#裙*颜色#红色", "红色连衣裙，咨询电话13800138000，地址北京市朝阳区建国路88号。"),
             _pair("卖家邮箱 a@b.com", "一款好用的保温杯，保温十二小时。")]

    train, val, report = prepare_pairs(pairs, seed=0, val_fraction=0.0)

    assert [p.copy for p in train] == [
        "红色连衣裙，咨询电话[电话]，地址[地址]。", "一款好用的保温杯，保温十二小时。"
    ]
    assert train[1].source == "卖家邮箱 [邮箱]" and val == []
    assert report["redacted"] == {"email": 1, "id_card": 0, "bank_card": 0, "phone": 1, "address": 1}


def test_prepare_pairs_drops_by_reason_and_reports_every_count():
    rng = random.Random(1)
    keep = _copy(rng)
    pairs = [
        _pair("a", keep),
        _pair("b", keep),                    # same copy under another source
        _pair("c", "太短了"),                 # 3 characters
        _pair("d", _copy(rng, 401)),         # one over max_chars
        _pair("", _copy(rng)),               # no source
        _pair("e", "   "),                   # no copy
        _pair("f", _copy(rng, 400)),         # exactly max_chars: kept
    ]

    train, _, report = prepare_pairs(pairs, seed=3, val_fraction=0.0, min_chars=10, max_chars=400)

    assert report == {
        "read": 7, "kept": 2, "train": 2, "val": 0,
        "dropped": {"empty": 2, "too_short": 1, "too_long": 1, "exact_duplicate": 1, "near_duplicate": 0},
        "redacted": {"email": 0, "id_card": 0, "bank_card": 0, "phone": 0, "address": 0},
        "seed": 3, "val_fraction": 0.0,
    }
    assert [p.source for p in train] == ["a", "f"]


def test_near_duplicate_copies_are_dropped_and_merely_similar_ones_kept():
    rng = random.Random(2)
    base = _copy(rng, 200)
    one_char_changed = base[:100] + "的" + base[101:]
    half_rewritten = base[:100] + _copy(rng, 100)
    assert jaccard(char_ngrams(base, SHINGLE), char_ngrams(one_char_changed, SHINGLE)) >= 0.9
    assert jaccard(char_ngrams(base, SHINGLE), char_ngrams(half_rewritten, SHINGLE)) < 0.9

    train, _, report = prepare_pairs(
        [_pair("x", base), _pair("y", one_char_changed), _pair("z", half_rewritten)], seed=0, val_fraction=0.0
    )

    assert [p.source for p in train] == ["x", "z"]
    assert report["dropped"]["near_duplicate"] == 1


def test_the_split_is_deterministic_per_seed_and_no_source_lands_on_both_sides():
    rng = random.Random(3)
    pairs = [_pair(f"商品{i // 3}", _copy(rng), i) for i in range(3000)]  # 1,000 sources, 3 copies each

    train, val, report = prepare_pairs(pairs, seed=7)
    again = prepare_pairs(pairs, seed=7)
    other = prepare_pairs(pairs, seed=8)

    assert (train, val) == again[:2]
    assert {p.source for p in val} != {p.source for p in other[1]}
    assert not {p.source for p in train} & {p.source for p in val}
    assert 0.07 < len(val) / len(pairs) < 0.13  # 10% of the sources, give or take chance
    assert len(val) % 3 == 0  # every copy of a source goes with it
    assert report["train"] + report["val"] == report["kept"] == 3000


def test_adding_data_never_moves_a_validation_source_into_train():
    rng = random.Random(4)
    old = [_pair(f"旧商品{i}", _copy(rng), i) for i in range(500)]
    new = [_pair(f"新商品{i}", _copy(rng), i) for i in range(500)]

    _, val_before, _ = prepare_pairs(old, seed=11)
    _, val_after, _ = prepare_pairs(old + new, seed=11)

    assert {p.source for p in val_before} <= {p.source for p in val_after}
    assert all((split_side(p.source, 11) < 0.1) for p in val_before)


def test_a_small_data_set_still_gets_one_validation_source():
    rng = random.Random(5)
    train, val, _ = prepare_pairs([_pair(f"s{i}", _copy(rng)) for i in range(3)], seed=0, val_fraction=0.1)
    assert len(val) == 1 and len(train) == 2


def test_prepare_pairs_refuses_a_val_fraction_outside_zero_to_one():
    with pytest.raises(ValueError, match="val_fraction"):
        prepare_pairs([], seed=0, val_fraction=1.0)


def test_near_duplicates_are_found_among_ten_thousand_pairs():
    rng = random.Random(6)
    pairs = [_pair(f"类型#裙*编号#{i % 4000}", _copy(rng, 110), i) for i in range(10_000)]
    pairs += [_pair("类型#裙", p.copy[:-1] + "。") for p in pairs[:200]]  # near duplicates to find

    _, _, report = prepare_pairs(pairs, seed=0)

    assert report["dropped"]["near_duplicate"] == 200


def test_prepare_texts_redacts_dedupes_and_filters_by_length():
    rng = random.Random(7)
    long_text = _copy(rng, 300)
    texts = [
        "新品上市，欢迎致电13800138000咨询。",
        "新品上市，欢迎致电13800138000咨询。",  # exact duplicate (after redaction too)
        long_text,
        long_text[:-1] + "。",  # near duplicate
        "短",
        _copy(rng, 1001),
    ]

    kept, report = prepare_texts(texts)

    assert kept == ["新品上市，欢迎致电[电话]咨询。", long_text]
    assert report["dropped"] == {"empty": 0, "too_short": 1, "too_long": 1, "exact_duplicate": 1,
                                 "near_duplicate": 1}
    assert report["redacted"]["phone"] == 2 and report["read"] == 6 and report["kept"] == 2
