"""Property tests: the catalogue validator never crashes, and every rejection names its row and field."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copygen import catalogue
from copygen.catalogue import FIELDS, ROW_FIELD, Product, parse_attributes, read_catalogue, validate_products
from copygen.prompt import SPECIAL_TOKENS, attributes_text
from copygen.textnorm import normalise

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that hits the interesting cases: the separators, brackets, invisible and control characters,
# full-width forms, CJK, emoji, whitespace.
TRICKY = st.sampled_from(list("#*{}[]\":,|\\ \t\n\r\x00\x1b\u200b\ufeff\u3000＃＊ＡＢ１") + ["类型", "颜色", "白色",
                                                                                       "🔥", "[SEP]", "NaN"])
TEXT = st.one_of(st.text(max_size=30), st.lists(TRICKY, max_size=12).map("".join))
KEY = st.sampled_from(["类型", "颜色", "材质", "风格", "图案", "裙长", "衣样式"])
VALUE = st.sampled_from(["上衣", "裙", "裤", "白色", "黑色", "棉", "简约", "复古", "线条", "连衣裙", "v领", "t恤"])
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), TEXT)
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
COLUMN = st.one_of(st.sampled_from([*FIELDS, "id", "sku", "product_id", "SKU", " Title ", "price"]), TEXT)
CELL = st.one_of(TEXT, JSON_VALUE, st.sampled_from(["SKU-1", "SKU-2", "颜色#白色*类型#上衣", '{"颜色": ["白色"]}']))
PAIRS = st.lists(st.tuples(st.one_of(KEY, TEXT), st.one_of(VALUE, TEXT)), max_size=4)
PLAUSIBLE_ROW = st.fixed_dictionaries({}, optional={
    "external_id": st.one_of(st.sampled_from(["SKU-1", "SKU-2", " SKU-3 ", "商品1"]), st.integers(), TEXT),
    "title": st.one_of(TEXT, st.sampled_from(["白色衬衫", "<b>裙</b>", "x'; DROP TABLE jobs;--"])),
    "category": st.one_of(st.sampled_from(["上衣", "裙", "裤"]), TEXT),
    "attributes": st.one_of(PAIRS.map(lambda pairs: "*".join(f"{k}#{v}" for k, v in pairs)),
                            st.dictionaries(KEY, st.one_of(VALUE, st.lists(VALUE, max_size=3), JSON_VALUE)), TEXT),
    "description": TEXT,
})
ROW = st.one_of(PLAUSIBLE_ROW, st.dictionaries(COLUMN, CELL, max_size=6), JSON_VALUE)


def check_result(result: dict) -> None:
    """What every successful parse_attributes result looks like."""
    assert isinstance(result, dict)
    for key, values in result.items():
        assert isinstance(key, str) and key and key == normalise(key)
        assert isinstance(values, list) and values
        for value in values:
            assert isinstance(value, str) and value and value == normalise(value)
            assert "#" not in value and "*" not in value
            assert not any(token in value for token in SPECIAL_TOKENS)
        assert "#" not in key and "*" not in key


@FAST
@given(st.one_of(TEXT, JSON_VALUE, JSON_VALUE.map(json.dumps)))
def test_parse_attributes_returns_clean_attributes_or_raises_value_error(value):
    try:
        result = parse_attributes(value)
    except ValueError as exc:
        assert str(exc)
        return
    check_result(result)


@FAST
@given(st.lists(st.tuples(KEY, VALUE), max_size=8))
def test_attribute_text_reads_back_as_the_same_attributes(pairs):
    attributes: dict[str, list[str]] = {}
    for key, value in pairs:
        attributes.setdefault(key, []).append(value)
    text = attributes_text(attributes)
    assert parse_attributes(text) == attributes
    assert parse_attributes(attributes) == attributes
    assert parse_attributes(json.dumps(attributes, ensure_ascii=False)) == attributes


@FAST
@given(st.lists(ROW, max_size=8))
def test_validate_products_never_crashes_and_every_rejection_names_row_and_field(rows):
    products, errors = validate_products(rows, source="payload")
    rejected = {error.row for error in errors}
    for error in errors:
        assert 1 <= error.row <= len(rows)
        assert error.field in (*FIELDS, ROW_FIELD)
        assert error.reason
        assert str(error).startswith(f"payload: row {error.row}: field '{error.field}': ")
    # every row is either a product or rejected, never both, never lost
    assert len(products) + len(rejected) == len(rows)
    ids = [product.external_id for product in products]
    assert len(ids) == len(set(ids))
    for product in products:
        assert 0 < len(product.external_id) <= catalogue.MAX_ID_CHARS
        assert product.external_id == product.external_id.strip()
        for name in ("title", "category", "description"):
            value = getattr(product, name)
            assert value == normalise(value) and len(value) <= catalogue.FIELD_LIMITS[name]
        check_result(product.attributes)
        assert product.source()
        assert Product.from_json(product.to_json()) == product


ID = st.text(st.characters(codec="utf-8", exclude_categories=("C", "Z")), min_size=1, max_size=12)
# A NUL byte makes the file binary (refused as a whole); a bare CR is a line break to every CSV
# reader, and Python's writer leaves it unquoted under a "\n" line terminator, so titles hold neither.
PRINTABLE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00\r"),
                    max_size=20)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(ID, PRINTABLE, st.lists(st.tuples(KEY, VALUE), max_size=3)), min_size=1, max_size=6),
       st.sampled_from(["\n", "\r\n"]), st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]), st.booleans())
def test_a_csv_written_by_any_writer_reads_back_row_by_row(records, newline, quoting, bom):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline, quoting=quoting)
    writer.writerow(["external_id", "title", "attributes"])
    for external_id, title, pairs in records:
        writer.writerow([external_id, title, "*".join(f"{k}#{v}" for k, v in pairs)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalogue.csv"
        path.write_bytes(("\ufeff" if bom else "").encode() + buffer.getvalue().encode("utf-8"))
        products, errors = read_catalogue(path)
    expected, expected_errors = validate_products(
        [{"external_id": i, "title": t, "attributes": "*".join(f"{k}#{v}" for k, v in p)} for i, t, p in records])
    assert products == expected
    assert [(e.row, e.field, e.reason) for e in errors] == [(e.row, e.field, e.reason) for e in expected_errors]
