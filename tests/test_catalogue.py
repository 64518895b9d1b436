"""The catalogue schema: reading CSV/XLSX/JSONL catalogues, row-by-row validation, job settings, payload."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import random
from pathlib import Path

import jsonschema
import openpyxl
import pytest

from copygen import catalogue
from copygen.catalogue import (
    CatalogueError,
    JobSettings,
    Product,
    RowError,
    SettingsError,
    parse_attributes,
    read_catalogue,
    submit_job_schema,
    validate_payload,
    validate_products,
    validate_settings,
)
from copygen.catalogue.job_settings import _SETTING_CHECKS
from copygen.prompt import LENGTHS, STYLE_CODES

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
HEADER = "external_id,title,category,attributes,description"
MAX_VARIANTS = 10
MAX_PRODUCTS = 1000


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list]) -> Path:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def sample_rows() -> list[dict]:
    return [json.loads(line) for line in (SAMPLES / "catalogue.jsonl").read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------------------------- good files


def test_the_sample_csv_reads_into_twenty_products_with_no_errors():
    products, errors = read_catalogue(SAMPLES / "catalogue.csv", strict=True)
    assert errors == []
    assert len(products) == 20
    assert [p.external_id for p in products] == [f"SKU-{n:04d}" for n in range(1, 21)]
    assert {p.category for p in products} == {"上衣", "裙", "裤"}
    first = products[0]
    assert first.title == "纯棉白色简约衬衫"
    assert first.attributes["颜色"] == ["白色"]
    assert first.description == "通勤和日常都好搭的基础款衬衫。"


def test_json_object_attributes_in_a_csv_cell_are_read_as_attributes():
    products, _ = read_catalogue(SAMPLES / "catalogue.csv")
    cardigan = next(p for p in products if p.external_id == "SKU-0004")
    assert cardigan.attributes == {"类型": ["上衣"], "版型": ["宽松"], "材质": ["针织"], "衣样式": ["开衫"],
                                   "颜色": ["灰色", "米白色"]}


def test_the_sample_jsonl_holds_the_same_products_as_the_sample_csv():
    from_csv, _ = read_catalogue(SAMPLES / "catalogue.csv")
    from_jsonl, errors = read_catalogue(SAMPLES / "catalogue.jsonl")
    assert errors == []
    assert from_jsonl == from_csv


def test_an_xlsx_workbook_reads_like_the_same_rows_in_csv(tmp_path):
    lines = (SAMPLES / "catalogue.csv").read_text(encoding="utf-8")
    import csv
    import io

    records = list(csv.reader(io.StringIO(lines)))
    path = write_xlsx(tmp_path / "catalogue.xlsx", records)
    from_xlsx, errors = read_catalogue(path)
    assert errors == []
    assert from_xlsx == read_catalogue(SAMPLES / "catalogue.csv")[0]


def test_xlsx_numbers_and_empty_cells_become_text_and_blanks(tmp_path):
    path = write_xlsx(tmp_path / "c.xlsx", [["sku", "title", "category"], [1001, "白色衬衫", None]])
    products, errors = read_catalogue(path)
    assert errors == []
    assert products == [Product("1001", "白色衬衫")]


def test_a_json_file_may_hold_an_array_of_products(tmp_path):
    path = write(tmp_path / "c.json", json.dumps(sample_rows()[:3], ensure_ascii=False, indent=2))
    products, errors = read_catalogue(path)
    assert errors == [] and [p.external_id for p in products] == ["SKU-0001", "SKU-0002", "SKU-0003"]


def test_a_tsv_file_is_read_with_tabs_between_columns(tmp_path):
    path = write(tmp_path / "c.tsv", "sku\ttitle\nA-1\t白色衬衫\n")
    assert read_catalogue(path)[0] == [Product("A-1", "白色衬衫")]


def test_column_names_are_matched_whatever_their_case_spacing_or_alias(tmp_path):
    path = write(tmp_path / "c.csv", "Product ID,Title,CATEGORY,Attributes\nP1,白色衬衫,上衣,颜色#白色\n")
    assert read_catalogue(path)[0] == [Product("P1", "白色衬衫", "上衣", {"颜色": ["白色"]})]


# ---------------------------------------------------------------------------------- encodings and bytes


def test_a_gbk_file_is_refused_naming_the_file_the_byte_offset_and_utf8(tmp_path):
    path = write(tmp_path / "gbk.csv", f"{HEADER}\nSKU-1,白色衬衫,上衣,颜色#白色,\n", encoding="gbk")
    with pytest.raises(CatalogueError) as exc:
        read_catalogue(path)
    message = str(exc.value)
    offset = len(f"{HEADER}\nSKU-1,".encode())
    assert str(path) in message
    assert f"byte offset {offset}" in message and "line 2" in message
    assert "GBK" in message and "UTF-8" in message


def test_a_utf8_bom_is_ignored_so_the_first_column_is_still_the_id(tmp_path):
    path = write(tmp_path / "bom.csv", "\ufeffexternal_id,title\nSKU-1,白色衬衫\n")
    assert read_catalogue(path)[0] == [Product("SKU-1", "白色衬衫")]


def test_crlf_line_endings_are_read_like_lf(tmp_path):
    path = write(tmp_path / "crlf.csv", f"{HEADER}\r\nSKU-1,白色衬衫,上衣,颜色#白色,好穿\r\nSKU-2,黑裤,裤,,\r\n")
    products, errors = read_catalogue(path)
    assert errors == []
    assert products[0] == Product("SKU-1", "白色衬衫", "上衣", {"颜色": ["白色"]}, "好穿")
    assert products[1] == Product("SKU-2", "黑裤", "裤")


def test_a_utf16_file_is_refused_with_advice_to_save_as_utf8(tmp_path):
    path = write(tmp_path / "u16.csv", "external_id\nSKU-1\n", encoding="utf-16")
    with pytest.raises(CatalogueError, match="UTF-16.*UTF-8"):
        read_catalogue(path)


def test_binary_garbage_is_refused_naming_the_file(tmp_path):
    garbage = random.Random(7).randbytes(4096)
    for suffix in (".csv", ".jsonl", ".xlsx"):
        path = tmp_path / f"garbage{suffix}"
        path.write_bytes(garbage)
        with pytest.raises(CatalogueError) as exc:
            read_catalogue(path)
        assert str(path) in str(exc.value)


def test_an_excel_workbook_renamed_to_csv_is_refused_as_a_zip(tmp_path):
    write_xlsx(tmp_path / "book.xlsx", [["external_id"], ["SKU-1"]])
    renamed = tmp_path / "book.csv"
    renamed.write_bytes((tmp_path / "book.xlsx").read_bytes())
    with pytest.raises(CatalogueError, match="zip archive"):
        read_catalogue(renamed)


# ---------------------------------------------------------------------------------- whole-file problems


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_an_empty_file_has_no_products(tmp_path, suffix):
    path = write(tmp_path / f"empty{suffix}", "")
    with pytest.raises(CatalogueError, match="no products"):
        read_catalogue(path)


def test_a_file_of_blank_lines_has_no_products(tmp_path):
    for name in ("blank.csv", "blank.jsonl"):
        with pytest.raises(CatalogueError, match="no products"):
            read_catalogue(write(tmp_path / name, "\n  \r\n\n"))


def test_a_header_without_rows_has_no_products(tmp_path):
    with pytest.raises(CatalogueError, match="no products.*header"):
        read_catalogue(write(tmp_path / "header.csv", HEADER + "\n"))
    with pytest.raises(CatalogueError, match="no products"):
        read_catalogue(write_xlsx(tmp_path / "header.xlsx", [HEADER.split(",")]))


def test_a_semicolon_separated_file_names_the_missing_id_column_and_the_columns_found(tmp_path):
    path = write(tmp_path / "semi.csv", "external_id;title;category\nSKU-1;白色衬衫;上衣\n")
    with pytest.raises(CatalogueError) as exc:
        read_catalogue(path)
    message = str(exc.value)
    assert str(path) in message
    assert "no id column" in message and "external_id" in message
    assert "'external_id;title;category'" in message
    assert "';'" in message


def test_a_file_without_an_id_column_lists_the_columns_it_has(tmp_path):
    path = write(tmp_path / "noid.csv", "name,colour\n白色衬衫,白\n")
    with pytest.raises(CatalogueError, match=r"no id column.*'name', 'colour'"):
        read_catalogue(path)


def test_the_missing_id_column_error_names_every_accepted_alias(tmp_path):
    path = write(tmp_path / "noid.csv", "标题,类目\n白色衬衫,上衣\n")
    with pytest.raises(CatalogueError) as exc:
        read_catalogue(path)
    message = str(exc.value)
    assert "no id column" in message
    for alias in ("external_id", "id", "sku", "product_id", "商品ID", "商品编号", "货号"):
        assert alias in message


def test_a_json_file_without_an_id_names_every_accepted_alias(tmp_path):
    path = write(tmp_path / "noid.jsonl", '{"title": "白色衬衫"}\n')
    with pytest.raises(CatalogueError, match="no row has an id") as exc:
        read_catalogue(path)
    assert "商品ID" in str(exc.value) and "货号" in str(exc.value)


def test_a_row_without_an_id_names_every_accepted_alias():
    error = only_error([{"title": "白色衬衫"}])
    assert error.field == "external_id" and "商品ID" in error.reason and "货号" in error.reason


def test_two_columns_giving_the_id_are_refused_as_ambiguous(tmp_path):
    path = write(tmp_path / "twoid.csv", "id,sku,title\n1,A,白色衬衫\n")
    with pytest.raises(CatalogueError, match=r"columns 1 \('id'\) and 2 \('sku'\) both give 'external_id'"):
        read_catalogue(path)


def test_an_unclosed_quote_is_refused_naming_the_line(tmp_path):
    path = write(tmp_path / "quote.csv", f'{HEADER}\nSKU-1,白色衬衫,上衣,,\nSKU-2,"黑裤,裤,,\n')
    with pytest.raises(CatalogueError, match=r"quote\.csv: line \d+: not valid CSV"):
        read_catalogue(path)


def test_an_unsupported_suffix_is_refused_listing_the_supported_ones(tmp_path):
    with pytest.raises(CatalogueError, match=r"\.xls.*save it as \.xlsx.*\.csv"):
        read_catalogue(write(tmp_path / "old.xls", "x"))
    with pytest.raises(CatalogueError, match="unsupported file type '.txt'"):
        read_catalogue(write(tmp_path / "c.txt", "x"))


def test_a_missing_file_is_a_catalogue_error(tmp_path):
    with pytest.raises(CatalogueError, match="no such file"):
        read_catalogue(tmp_path / "nope.csv")


def test_a_damaged_xlsx_is_refused_naming_the_file(tmp_path):
    path = write(tmp_path / "bad.xlsx", "external_id\nSKU-1\n")
    with pytest.raises(CatalogueError, match=r"bad\.xlsx: not a readable \.xlsx"):
        read_catalogue(path)


# ---------------------------------------------------------------------------------- row errors in files


def test_csv_row_numbers_count_lines_under_the_header_including_blank_lines(tmp_path):
    path = write(tmp_path / "rows.csv", f"{HEADER}\nSKU-1,a,,,\n\n,b,,,\nSKU-4,d,,,\n")
    products, errors = read_catalogue(path)
    assert [p.external_id for p in products] == ["SKU-1", "SKU-4"]
    assert errors == [RowError(str(path), 3, "external_id", errors[0].reason)]
    assert str(errors[0]).startswith(f"{path}: row 3: field 'external_id': missing")


def test_xlsx_row_numbers_count_sheet_rows_under_the_header(tmp_path):
    path = write_xlsx(tmp_path / "rows.xlsx", [["sku", "title"], ["A", "衬衫"], ["A", "衬衫"]])
    _, errors = read_catalogue(path)
    assert [(e.row, e.field) for e in errors] == [(2, "external_id")]
    assert "first given in row 1" in errors[0].reason


def test_a_bad_json_line_is_a_row_error_and_the_other_lines_are_read(tmp_path):
    lines = [json.dumps(row, ensure_ascii=False) for row in sample_rows()[:3]]
    lines[1] = lines[1][:-5]
    path = write(tmp_path / "c.jsonl", "\n".join(lines) + "\n")
    products, errors = read_catalogue(path)
    assert [p.external_id for p in products] == ["SKU-0001", "SKU-0003"]
    assert len(errors) == 1
    assert (errors[0].row, errors[0].field) == (2, catalogue.ROW_FIELD)
    assert "not valid JSON" in errors[0].reason


def test_a_json_line_that_is_not_an_object_is_a_row_error(tmp_path):
    path = write(tmp_path / "c.jsonl", '{"external_id": "A", "title": "衬衫"}\n["B", "裤"]\n')
    products, errors = read_catalogue(path)
    assert [p.external_id for p in products] == ["A"]
    assert (errors[0].row, errors[0].field) == (2, "(row)") and "got a list" in errors[0].reason


def test_a_csv_row_with_too_many_fields_is_rejected_alone(tmp_path):
    path = write(tmp_path / "wide.csv", "external_id,title\nA,白色衬衫\nB,黑色,长裤\nC,半身裙,\n")
    products, errors = read_catalogue(path)
    assert [p.external_id for p in products] == ["A", "C"]
    assert [(e.row, e.field) for e in errors] == [(2, "(row)")]
    assert "3 fields but the header has 2" in errors[0].reason


def test_a_csv_row_with_too_few_fields_is_padded_with_blanks(tmp_path):
    path = write(tmp_path / "short.csv", f"{HEADER}\nSKU-1,白色衬衫\n")
    assert read_catalogue(path) == ([Product("SKU-1", "白色衬衫")], [])


def test_unknown_columns_are_ignored_and_logged_once(tmp_path, caplog):
    path = write(tmp_path / "extra.csv", "external_id,title,price,stock\nA,衬衫,99,1\nB,裤子,59,2\n")
    with caplog.at_level(logging.WARNING, logger="copygen.catalogue"):
        products, errors = read_catalogue(path)
    assert errors == [] and len(products) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'price', 'stock'" in warnings[0]


def test_strict_mode_raises_with_every_row_error(tmp_path):
    path = write(tmp_path / "bad.csv", f"{HEADER}\n,a,,,\nB,b,,颜色白色,\nB,c,,,\n")
    products, errors = read_catalogue(path)
    assert products == [] and len(errors) == 3
    with pytest.raises(CatalogueError) as exc:
        read_catalogue(path, strict=True)
    assert exc.value.errors == errors
    message = str(exc.value)
    assert "3 row(s) rejected" in message and "row N = the N-th line under the header" in message
    for error in errors:
        assert str(error) in message


def test_strict_mode_returns_the_products_of_a_clean_file(tmp_path):
    path = write(tmp_path / "ok.csv", "sku,title\nA,衬衫\n")
    assert read_catalogue(path, strict=True) == ([Product("A", "衬衫")], [])


# ---------------------------------------------------------------------------------- parse_attributes


def test_advertisegen_attributes_keep_repeated_keys_in_order():
    assert parse_attributes("类型#裤*图案#复古*风格#性感*图案#线条") == {
        "类型": ["裤"], "图案": ["复古", "线条"], "风格": ["性感"]}
    assert list(parse_attributes("颜色#白色*类型#上衣")) == ["颜色", "类型"]


def test_attribute_text_is_trimmed_and_normalised():
    raw = " 类型 # 上衣 *\u200b颜色#白色 \t* 版型＃宽松 *"
    assert parse_attributes(raw) == {"类型": ["上衣"], "颜色": ["白色"], "版型": ["宽松"]}


@pytest.mark.parametrize("blank", [None, "", "   ", float("nan"), "\u200b", {}])
def test_blank_attributes_are_no_attributes(blank):
    assert parse_attributes(blank) == {}


@pytest.mark.parametrize(("text", "names"), [
    ("类型#上衣*颜色白色", ["pair 2", "'颜色白色'", "no '#'"]),
    ("类型#上衣*#白色", ["pair 2", "'#白色'", "empty key"]),
    ("类型#*颜色#白色", ["pair 1", "'类型#'", "empty value"]),
    ("类型#上衣#裙", ["pair 1", "'#'"]),
    ("类型#[SEP]", ["pair 1", "[SEP]"]),
])
def test_a_bad_attribute_pair_is_refused_naming_the_pair(text, names):
    with pytest.raises(ValueError) as exc:
        parse_attributes(text)
    for name in names:
        assert name in str(exc.value)


def test_attributes_may_be_a_json_object_with_text_or_lists_of_text():
    assert parse_attributes('{"类型": "上衣", "颜色": ["白色", "黑色"]}') == {
        "类型": ["上衣"], "颜色": ["白色", "黑色"]}
    assert parse_attributes({"类型": "裙", "风格": ("淑女",)}) == {"类型": ["裙"], "风格": ["淑女"]}


def test_a_json_object_with_a_repeated_key_keeps_every_value():
    assert parse_attributes('{"图案": "复古", "图案": "线条"}') == {"图案": ["复古", "线条"]}


@pytest.mark.parametrize(("value", "names"), [
    ('{"颜色": {"主色": "白色"}}', ["'颜色'", "an object"]),
    ('{"尺码": 42}', ["'尺码'", "a number"]),
    ({"尺码": [42]}, ["'尺码'", "a number"]),
    ('{"颜色": ["白色", ["黑色"]]}', ["'颜色'", "a list"]),
    ('{"颜色": null}', ["'颜色'", "null"]),
    ('{"颜色": []}', ["'颜色'", "empty list"]),
    ('{"颜色": ""}', ["'颜色'", "empty value"]),
    ('{"尺寸": "120*80cm"}', ["'尺寸'", "'*'"]),
    ({1: "白色"}, ["key 1", "must be text"]),
    ('{"颜色": "白色"', ["not valid JSON"]),
    ('["白色"]', ["expected a JSON object", "a list"]),
    (["颜色#白色"], ["got a list"]),
    (42, ["got a number"]),
])
def test_bad_attribute_objects_are_refused_naming_the_key(value, names):
    with pytest.raises(ValueError) as exc:
        parse_attributes(value)
    for name in names:
        assert name in str(exc.value)


def test_deeply_nested_json_attributes_are_a_value_error_not_a_crash():
    with pytest.raises(ValueError):
        parse_attributes("{" + '"a":[' * 100_000)
    with pytest.raises(ValueError):
        parse_attributes('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")


# ---------------------------------------------------------------------------------- Product


def test_the_source_leads_with_the_category_as_type_when_attributes_lack_it():
    product = Product("A", "白色衬衫", "上衣", {"颜色": ["白色"]}, "好穿")
    assert product.source() == "白色衬衫 | 类型#上衣*颜色#白色 | 好穿"


def test_the_source_keeps_the_attributes_type_over_the_category():
    product = Product("A", "连衣裙", "女装", {"类型": ["裙"], "颜色": ["白色"]})
    assert product.source() == "连衣裙 | 类型#裙*颜色#白色"


def test_a_product_round_trips_through_json():
    for product in read_catalogue(SAMPLES / "catalogue.csv")[0]:
        encoded = json.loads(json.dumps(product.to_json(), ensure_ascii=False))
        assert Product.from_json(encoded) == product


def test_a_product_from_json_fills_missing_fields_and_reads_attribute_text():
    assert Product.from_json({"external_id": "A", "attributes": "颜色#白色"}) == Product("A", attributes={"颜色": ["白色"]})
    with pytest.raises(ValueError, match="external_id"):
        Product.from_json({"title": "x"})


def test_products_are_frozen_and_hashable():
    product = Product("A", "衬衫", attributes={"颜色": ["白色"]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        product.title = "裤子"  # type: ignore[misc]
    assert len({product, Product("A", "衬衫", attributes={"颜色": ["白色"]})}) == 1


# ---------------------------------------------------------------------------------- validate_products


def only_error(rows) -> RowError:
    products, errors = validate_products(rows)
    assert products == [] and len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("row", [{"title": "衬衫"}, {"external_id": "", "title": "衬衫"},
                                 {"external_id": "   ", "title": "衬衫"}, {"external_id": None, "title": "衬衫"}])
def test_a_row_without_an_id_is_rejected(row):
    error = only_error([row])
    assert (error.source, error.row, error.field) == ("payload", 1, "external_id")
    assert "missing" in error.reason


@pytest.mark.parametrize("alias", ["id", "sku", "product_id", "SKU", "商品ID"])
def test_the_id_may_come_from_an_alias_column(alias):
    products, errors = validate_products([{alias: "P-1", "title": "衬衫"}])
    assert errors == [] and products == [Product("P-1", "衬衫")]


def test_an_integer_id_is_read_as_its_text():
    assert validate_products([{"external_id": 1001, "title": "衬衫"}])[0] == [Product("1001", "衬衫")]


def test_the_id_is_trimmed_but_otherwise_kept_exactly():
    products, _ = validate_products([{"external_id": "  ＳＫＵ 1 ", "title": "衬衫"}])
    assert products[0].external_id == "ＳＫＵ 1"


def test_an_id_with_an_invisible_character_is_rejected_not_changed():
    error = only_error([{"external_id": "SKU\u200b1", "title": "衬衫"}])
    assert error.field == "external_id" and "U+200B" in error.reason


@pytest.mark.parametrize(("field", "value", "kind"), [
    ("title", ["白色", "衬衫"], "a list"),
    ("title", {"zh": "衬衫"}, "an object"),
    ("category", 3, "a number"),
    ("description", True, "a boolean"),
    ("external_id", ["A"], "a list"),
    ("external_id", 1.5, "a number"),
    ("attributes", ["颜色#白色"], "a list"),
])
def test_a_value_of_the_wrong_type_is_rejected_naming_field_and_type(field, value, kind):
    row = {"external_id": "A", "title": "衬衫", field: value}
    error = only_error([row])
    assert error.field == field and kind in error.reason


def test_nested_json_in_attributes_is_rejected_naming_the_key():
    error = only_error([{"external_id": "A", "attributes": {"颜色": {"主": "白色"}}}])
    assert error.field == "attributes" and "'颜色'" in error.reason


def test_unparsable_attributes_are_rejected_and_the_other_rows_kept():
    products, errors = validate_products([
        {"external_id": "A", "attributes": "颜色#白色"},
        {"external_id": "B", "attributes": "颜色白色"},
        {"external_id": "C", "attributes": "颜色#黑色"},
    ])
    assert [p.external_id for p in products] == ["A", "C"]
    assert [(e.row, e.field) for e in errors] == [(2, "attributes")]
    assert str(errors[0]) == "payload: row 2: field 'attributes': " + errors[0].reason
    assert "pair 1 '颜色白色'" in errors[0].reason


def test_a_duplicate_id_keeps_the_first_row_and_reports_the_later_ones():
    products, errors = validate_products([
        {"external_id": "A", "title": "first"}, {"external_id": "B", "title": "b"},
        {"external_id": "A", "title": "second"}, {"external_id": " A ", "title": "third"},
    ])
    assert [(p.external_id, p.title) for p in products] == [("A", "first"), ("B", "b")]
    assert [(e.row, e.field) for e in errors] == [(3, "external_id"), (4, "external_id")]
    assert all("first given in row 1" in e.reason for e in errors)


def test_a_duplicate_of_a_rejected_row_is_still_a_duplicate():
    _, errors = validate_products([{"external_id": "A", "attributes": "bad"}, {"external_id": "A", "title": "ok"}])
    assert [(e.row, e.field) for e in errors] == [(1, "attributes"), (2, "external_id")]


@pytest.mark.parametrize(("field", "limit"), [
    ("external_id", catalogue.MAX_ID_CHARS), ("title", catalogue.MAX_TITLE_CHARS),
    ("category", catalogue.MAX_CATEGORY_CHARS), ("description", catalogue.MAX_DESCRIPTION_CHARS),
])
def test_a_field_over_its_limit_is_rejected_and_one_at_the_limit_accepted(field, limit):
    at_limit = {"external_id": "A", "title": "衬衫", field: "长" * limit}
    assert validate_products([at_limit])[1] == []
    error = only_error([{**at_limit, field: "长" * (limit + 1)}])
    assert error.field == field and f"maximum is {limit}" in error.reason


def test_attributes_over_their_limit_are_rejected():
    value = "长" * (catalogue.MAX_ATTRIBUTES_CHARS - 3)
    assert validate_products([{"external_id": "A", "attributes": {"颜色": value}}])[1] == []
    error = only_error([{"external_id": "A", "attributes": {"颜色": value + "长"}}])
    assert error.field == "attributes" and f"maximum is {catalogue.MAX_ATTRIBUTES_CHARS}" in error.reason


def test_emoji_html_and_sql_looking_text_pass_through_as_text():
    row = {
        "external_id": "A'; DROP TABLE jobs;--",
        "title": "<b>夏季</b> 白色衬衫 🔥👗",
        "description": "Robert'); DELETE FROM variants WHERE 1=1; -- <script>alert(1)</script> &amp;",
    }
    products, errors = validate_products([row])
    assert errors == []
    assert products[0].to_json() == {**row, "category": "", "attributes": {}}


def test_zero_width_and_control_characters_are_removed_from_text():
    products, _ = validate_products([{
        "external_id": "A", "title": "白\u200b色\u200d衬\ufeff衫\x00", "description": "好穿\r\n\t透气\x1b",
        "attributes": "颜\u200c色#白\u2060色",
    }])
    assert products[0].title == "白色衬衫"
    assert products[0].description == "好穿 透气"
    assert products[0].attributes == {"颜色": ["白色"]}


def test_full_width_ascii_in_text_is_folded_to_half_width():
    products, _ = validate_products([{"external_id": "A", "title": "Ｔ恤 ＸＬ码"}])
    assert products[0].title == "T恤 XL码"


def test_prompt_control_codes_in_text_are_rejected():
    error = only_error([{"external_id": "A", "title": "衬衫[SEP]新品"}])
    assert error.field == "title" and "[SEP]" in error.reason


def test_a_category_with_attribute_separators_is_rejected():
    error = only_error([{"external_id": "A", "category": "上衣*颜色#红色"}])
    assert error.field == "category"


def test_a_product_with_nothing_to_write_about_is_rejected():
    error = only_error([{"external_id": "A", "title": " ", "description": "\u200b"}])
    assert error.field == "title" and "at least one" in error.reason


def test_a_row_with_several_problems_reports_each_field():
    _, errors = validate_products([{"external_id": ["A"], "title": 5, "attributes": "x"}])
    assert [e.field for e in errors] == ["external_id", "title", "attributes"]
    assert {e.row for e in errors} == {1}


def test_a_row_that_is_not_an_object_is_rejected_as_a_whole():
    products, errors = validate_products([["A", "衬衫"], {"external_id": "B", "title": "裤"}, None])
    assert [p.external_id for p in products] == ["B"]
    assert [(e.row, e.field) for e in errors] == [(1, "(row)"), (3, "(row)")]


def test_a_row_giving_the_id_twice_is_rejected():
    error = only_error([{"id": "A", "sku": "B", "title": "衬衫"}])
    assert error.field == "external_id" and "'id' and 'sku'" in error.reason


def test_row_errors_serialise_to_json():
    error = only_error([{"title": "衬衫"}])
    assert json.loads(json.dumps(error.to_json())) == dataclasses.asdict(error)


# ---------------------------------------------------------------------------------- settings


def test_empty_settings_are_the_defaults():
    settings = validate_settings({}, MAX_VARIANTS)
    assert settings == JobSettings()
    assert settings.to_json() == {
        "variants": 3, "length": "medium", "style": "ad", "opening": "", "temperature": 0.95,
        "top_p": 0.7, "seed": None, "model_version": None, "queue": "batch", "campaign": None,
        "oversample": None, "stated_only": False, "clause_floor": None, "word_pairs": False,
        "known_clauses": False}
    assert validate_settings(None, MAX_VARIANTS) == JobSettings()


def test_stated_only_is_true_or_false_and_nothing_else():
    assert validate_settings({"stated_only": True}, MAX_VARIANTS).stated_only is True
    for bad in ("yes", 1, None):
        with pytest.raises(SettingsError) as err:
            validate_settings({"stated_only": bad}, MAX_VARIANTS)
        assert err.value.fields == ["stated_only"]


def test_the_job_setting_defaults_are_the_named_constants():
    settings = JobSettings()
    assert (settings.variants, settings.length, settings.style, settings.queue) == (
        catalogue.DEFAULT_VARIANTS, catalogue.DEFAULT_LENGTH, catalogue.DEFAULT_STYLE, catalogue.DEFAULT_QUEUE)
    assert (settings.temperature, settings.top_p) == (catalogue.DEFAULT_TEMPERATURE, catalogue.DEFAULT_TOP_P)
    assert (catalogue.DEFAULT_TEMPERATURE, catalogue.DEFAULT_TOP_P) == (0.95, 0.7)


def test_every_setting_has_a_check():
    assert set(_SETTING_CHECKS) == {f.name for f in dataclasses.fields(JobSettings)}


def test_settings_at_their_bounds_are_accepted():
    settings = validate_settings({
        "variants": MAX_VARIANTS, "length": "long", "style": "description", "opening": "新" * 30,
        "temperature": 2, "top_p": 1, "seed": catalogue.MAX_SEED, "model_version": "v3",
        "queue": "interactive", "campaign": "双11",
    }, MAX_VARIANTS)
    assert settings.variants == MAX_VARIANTS and settings.temperature == 2.0 and settings.top_p == 1.0
    assert isinstance(settings.temperature, float)
    assert validate_settings({"variants": 1, "seed": 0, "temperature": 1e-9}, MAX_VARIANTS).seed == 0


def test_whole_numbers_sent_as_json_floats_are_accepted():
    settings = validate_settings({"variants": 3.0, "seed": 7.0}, MAX_VARIANTS)
    assert (settings.variants, settings.seed) == (3, 7)
    assert isinstance(settings.variants, int)


def test_the_opening_is_normalised_and_empty_names_mean_none():
    settings = validate_settings({"opening": " 新品上市，\u200b", "campaign": "", "model_version": None}, MAX_VARIANTS)
    assert settings.opening == "新品上市，" and settings.campaign is None


@pytest.mark.parametrize(("name", "value", "says"), [
    ("variants", 0, "from 1 to 10"),
    ("variants", 11, "from 1 to 10"),
    ("variants", 2.5, "whole number"),
    ("variants", True, "boolean"),
    ("variants", "3", "text"),
    ("temperature", 0, "above 0"),
    ("temperature", 2.01, "at most 2"),
    ("temperature", float("nan"), "finite"),
    ("temperature", "hot", "number"),
    ("top_p", 0.0, "above 0"),
    ("top_p", 1.5, "at most 1"),
    ("length", "huge", "short, medium, long"),
    ("length", None, "one of"),
    ("style", "poem", "ad, description"),
    ("opening", "新" * 31, "maximum is 30"),
    ("opening", 5, "text"),
    ("opening", "[EOS]", "[EOS]"),
    ("opening", "全网最好的，", "Advertising Law term 最好"),
    ("seed", -1, "from 0"),
    ("seed", 2**32, "from 0"),
    ("seed", "42", "whole number"),
    ("queue", "urgent", "batch, interactive"),
    ("model_version", 3, "text"),
    ("campaign", "活" * 201, "maximum is 200"),
    ("clause_floor", 0, "up to 0"),
    ("clause_floor", -21, "from -20"),
    ("clause_floor", "low", "number"),
    ("word_pairs", "yes", "true or false"),
    ("word_pairs", 1, "true or false"),
    ("known_clauses", "yes", "true or false"),
])
def test_a_bad_setting_is_refused_naming_the_field(name, value, says):
    with pytest.raises(SettingsError) as exc:
        validate_settings({name: value}, MAX_VARIANTS)
    assert exc.value.fields == [name]
    assert str(exc.value).startswith(f"{name}: ") and says in str(exc.value)


def test_unknown_settings_are_refused_naming_each_of_them():
    with pytest.raises(SettingsError) as exc:
        validate_settings({"variants": 2, "temprature": 1.0, "beam": 4}, MAX_VARIANTS)
    assert exc.value.fields == ["temprature", "beam"]
    assert "unknown setting" in str(exc.value)


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(SettingsError) as exc:
        validate_settings({"variants": 0, "top_p": 2, "queue": "x"}, MAX_VARIANTS)
    assert exc.value.fields == ["variants", "top_p", "queue"]


def test_settings_that_are_not_an_object_are_refused():
    with pytest.raises(SettingsError, match="settings: expected an object"):
        validate_settings(["variants", 3], MAX_VARIANTS)  # type: ignore[arg-type]


def test_the_variants_maximum_is_the_one_the_caller_passes():
    assert validate_settings({"variants": 20}, 50).variants == 20
    with pytest.raises(SettingsError, match="from 1 to 2"):
        validate_settings({"variants": 3}, 2)


# ---------------------------------------------------------------------------------- payload and schema


def sample_payload() -> dict:
    return {
        "products": sample_rows(),
        "settings": {"variants": 3, "length": "short", "style": "ad", "opening": "新品上市，",
                     "temperature": 0.95, "top_p": 0.7, "seed": 42, "queue": "batch", "campaign": "双11"},
        "idempotency_key": "demo-2024-11-11",
    }


def test_the_sample_payload_is_valid_by_the_schema_and_the_validator():
    payload = sample_payload()
    jsonschema.validate(payload, submit_job_schema(), cls=jsonschema.Draft202012Validator)
    products, errors, settings, key = validate_payload(payload, MAX_VARIANTS, MAX_PRODUCTS)
    assert errors == [] and len(products) == 20
    assert products == read_catalogue(SAMPLES / "catalogue.csv")[0]
    assert settings.length == "short" and settings.seed == 42 and key == "demo-2024-11-11"


def test_a_payload_of_products_alone_takes_default_settings():
    products, errors, settings, key = validate_payload({"products": sample_rows()[:2]}, MAX_VARIANTS, MAX_PRODUCTS)
    assert len(products) == 2 and errors == [] and settings == JobSettings() and key is None


def test_bad_products_in_a_payload_are_row_errors_not_a_refusal():
    rows = sample_rows()[:3]
    rows[1] = {**rows[1], "attributes": "颜色白色"}
    products, errors, _, _ = validate_payload({"products": rows}, MAX_VARIANTS, MAX_PRODUCTS)
    assert len(products) == 2 and [(e.source, e.row, e.field) for e in errors] == [("payload", 2, "attributes")]


@pytest.mark.parametrize(("payload", "fields", "says"), [
    ({}, ["products"], "missing"),
    ({"products": "SKU-1"}, ["products"], "list"),
    ({"products": []}, ["products"], "empty"),
    ({"products": [{"external_id": "A"}], "priority": 1}, ["priority"], "unknown payload key"),
    ({"products": [{"external_id": "A"}], "idempotency_key": 7}, ["idempotency_key"], "text or null"),
    ({"products": [{"external_id": "A"}], "idempotency_key": ""}, ["idempotency_key"], "1 to 200"),
    ({"products": [{"external_id": "A"}], "settings": {"variants": 0}}, ["settings.variants"], "from 1"),
    ({"products": [{"external_id": "A"}], "settings": {"nope": 1}}, ["settings.nope"], "unknown setting"),
    ({"products": [{"external_id": "A"}], "settings": "fast"}, ["settings"], "object"),
    ({"settings": {"top_p": 9}, "extra": 1}, ["extra", "products", "settings.top_p"], "products: missing"),
])
def test_a_bad_payload_is_refused_naming_every_key_at_fault(payload, fields, says):
    with pytest.raises(SettingsError) as exc:
        validate_payload(payload, MAX_VARIANTS, MAX_PRODUCTS)
    assert exc.value.fields == fields and says in str(exc.value)


def test_a_payload_that_is_not_an_object_is_refused():
    with pytest.raises(SettingsError, match="payload: expected an object"):
        validate_payload([{"external_id": "A"}], MAX_VARIANTS, MAX_PRODUCTS)  # type: ignore[arg-type]


def test_too_many_products_are_refused_quoting_the_maximum():
    rows = [{"external_id": f"A{n}", "title": "衬衫"} for n in range(4)]
    assert len(validate_payload({"products": rows}, MAX_VARIANTS, 4)[0]) == 4
    with pytest.raises(SettingsError, match="5 products, more than the maximum of 4 per job"):
        validate_payload({"products": [*rows, {"external_id": "B"}]}, MAX_VARIANTS, 4)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    schema = submit_job_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_schema_limits_match_the_module_constants_and_settings_defaults():
    from copygen.settings import Settings

    schema = submit_job_schema()
    product = schema["$defs"]["product"]["properties"]
    assert product["external_id"]["maxLength"] == catalogue.MAX_ID_CHARS
    assert product["title"]["maxLength"] == catalogue.MAX_TITLE_CHARS
    assert product["category"]["maxLength"] == catalogue.MAX_CATEGORY_CHARS
    assert product["description"]["maxLength"] == catalogue.MAX_DESCRIPTION_CHARS
    assert product["attributes"]["anyOf"][0]["maxLength"] == catalogue.MAX_ATTRIBUTES_CHARS
    assert schema["$defs"]["product"]["required"] == ["external_id"]
    settings = schema["$defs"]["settings"]["properties"]
    assert set(settings) == {f.name for f in dataclasses.fields(JobSettings)}
    assert settings["variants"]["maximum"] == Settings.model_fields["max_variants"].default
    assert schema["properties"]["products"]["maxItems"] == Settings.model_fields["max_products"].default
    assert settings["length"]["enum"] == list(LENGTHS)
    assert settings["style"]["enum"] == list(STYLE_CODES)
    assert settings["queue"]["enum"] == list(catalogue.QUEUES)
    assert settings["opening"]["maxLength"] == catalogue.MAX_OPENING_CHARS
    assert settings["temperature"]["maximum"] == catalogue.MAX_TEMPERATURE
    assert settings["top_p"]["maximum"] == catalogue.MAX_TOP_P
    assert settings["seed"]["maximum"] == catalogue.MAX_SEED
    assert settings["model_version"]["maxLength"] == settings["campaign"]["maxLength"] == catalogue.MAX_NAME_CHARS
    assert schema["properties"]["idempotency_key"]["maxLength"] == catalogue.MAX_IDEMPOTENCY_KEY_CHARS
    assert settings["oversample"]["maximum"] == catalogue.MAX_OVERSAMPLE
    assert settings["stated_only"]["type"] == "boolean"
    assert settings["clause_floor"]["minimum"] == catalogue.MIN_CLAUSE_FLOOR
    assert settings["word_pairs"]["type"] == "boolean"
    assert settings["known_clauses"]["type"] == "boolean"
    assert set(schema["properties"]) == set(catalogue.PAYLOAD_KEYS)


def _with(path: list, value) -> dict:
    payload = copy.deepcopy(sample_payload())
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


@pytest.mark.parametrize(("path", "value"), [
    (["settings", "variants"], 0), (["settings", "variants"], 11), (["settings", "variants"], True),
    (["settings", "temperature"], 0), (["settings", "temperature"], 2.5), (["settings", "top_p"], 1.01),
    (["settings", "length"], "xl"), (["settings", "style"], "poem"), (["settings", "queue"], "now"),
    (["settings", "opening"], "新" * 31), (["settings", "seed"], -1), (["settings", "seed"], 2**32),
    (["settings", "bogus"], 1), (["bogus"], 1), (["products"], []), (["products"], "x"),
    (["idempotency_key"], ""), (["idempotency_key"], 5), (["settings"], []),
])
def test_the_schema_and_the_validator_both_refuse_a_bad_payload(path, value):
    payload = _with(path, value)
    assert not jsonschema.Draft202012Validator(submit_job_schema()).is_valid(payload)
    with pytest.raises(SettingsError):
        validate_payload(payload, MAX_VARIANTS, MAX_PRODUCTS)


@pytest.mark.parametrize(("path", "value"), [
    (["settings"], None), (["settings"], {}), (["idempotency_key"], None), (["settings", "seed"], None),
    (["settings", "temperature"], 2), (["settings", "top_p"], 1), (["settings", "variants"], 10),
    (["settings", "campaign"], None), (["settings", "model_version"], "v1"),
])
def test_the_schema_and_the_validator_both_accept_a_good_payload(path, value):
    payload = _with(path, value)
    jsonschema.validate(payload, submit_job_schema(), cls=jsonschema.Draft202012Validator)
    assert validate_payload(payload, MAX_VARIANTS, MAX_PRODUCTS)[1] == []


@pytest.mark.parametrize("row", [
    {"title": "衬衫"}, {"external_id": ""}, {"external_id": "A", "title": "长" * 301},
    {"external_id": "A", "category": "上衣*颜色#红"}, {"external_id": "A", "attributes": {"颜色": ""}},
    {"external_id": "A", "attributes": {"颜色": {"主": "白"}}}, {"external_id": "A", "attributes": 3},
    {"external_id": "A", "attributes": {"尺寸": "120*80"}}, {"external_id": "A", "description": 5},
])
def test_a_row_the_schema_refuses_is_a_row_error_for_the_validator(row):
    payload = {"products": [row]}
    assert not jsonschema.Draft202012Validator(submit_job_schema()).is_valid(payload)
    products, errors, _, _ = validate_payload(payload, MAX_VARIANTS, MAX_PRODUCTS)
    assert products == [] and errors


def test_math_nan_is_not_a_valid_temperature_even_though_python_json_reads_it():
    payload = json.loads('{"products": [{"external_id": "A", "title": "x"}], "settings": {"temperature": NaN}}')
    assert math.isnan(payload["settings"]["temperature"])
    with pytest.raises(SettingsError, match="settings.temperature"):
        validate_payload(payload, MAX_VARIANTS, MAX_PRODUCTS)


def test_a_settings_error_may_be_raised_with_one_reason_about_one_field():
    error = SettingsError("must be positive", "variants")
    assert error.fields == ["variants"] and str(error) == "variants: must be positive"


@pytest.mark.parametrize("bad", ["A\tB", "A\u3000B", "A\x7fB", "\u2060A"])
def test_an_id_with_a_tab_control_or_special_space_is_rejected(bad):
    error = only_error([{"external_id": bad, "title": "衬衫"}])
    assert error.field == "external_id" and "U+" in error.reason


def test_a_json_lines_file_where_no_row_has_an_id_names_the_fields_it_found(tmp_path):
    path = write(tmp_path / "adgen.jsonl", '{"content": "类型#上衣*颜色#白色", "summary": "白色上衣"}\n' * 3)
    with pytest.raises(CatalogueError, match=r"adgen\.jsonl: no row has an id.*'content', 'summary'"):
        read_catalogue(path)
