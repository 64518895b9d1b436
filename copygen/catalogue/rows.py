"""Row validation: catalogue rows (mappings from a file or a payload) into Products and RowErrors.

Validation never lets one bad row poison a job: every problem becomes a :class:`RowError` naming
the source, the row and the field, and the other rows go through. The rules:

* Columns: ``external_id`` (aliases ``id``, ``sku``, ``product_id``, 商品ID, 商品编号, 货号), ``title``
  (``name``, 标题, 商品名称), ``category`` (类目, 类别, 品类), ``attributes`` (``attrs``, 属性),
  ``description`` (``desc``, 描述, 商品描述); :data:`COLUMN_ALIASES` has them all. Column names
  are matched case-insensitively, with spaces and hyphens read as underscores ("External ID" is
  external_id). Unknown columns are ignored and logged once per file or payload at WARNING; they
  are not row errors.
* Row numbers are 1-based and count data rows only (each file format's convention is in
  :mod:`copygen.catalogue.readers`; in a payload, row N is ``products[N - 1]``). Wholly blank
  lines/rows are skipped without an error but keep their number.
* The id is trimmed and otherwise kept exactly (it is the merchant's join key): an id with an
  invisible or control character is rejected rather than silently changed. An integer id (JSON)
  is accepted as its decimal text.
* Text fields are normalised with :func:`copygen.textnorm.normalise` (zero-width characters
  dropped, control characters and whitespace runs become one space, full-width ASCII folded). HTML, SQL-looking text
  and emoji are plain text and pass through unchanged. Text may not contain the prompt's control
  codes ([SEP], [EOS], ...); category and attributes may not contain ``#`` or ``*``, which
  separate attribute pairs in the prompt.
* Limits, counted in characters after normalisation: the MAX_*_CHARS constants of
  :mod:`copygen.catalogue.products`. The attributes limit applies to their AdvertiseGen text ``k#v*k#v``.
* The same id twice in one job: the first occurrence is kept, every later one is rejected
  (also when the first one was itself rejected for another reason, so a job's content never
  depends on which duplicate happens to be valid).
* A product needs something to write about: a title, category, attributes or description.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from copygen.catalogue.attribute_parsing import ATTRIBUTE_SEPARATORS, parse_attributes
from copygen.catalogue.products import (
    FIELD_LIMITS,
    FIELDS,
    MAX_ATTRIBUTES_CHARS,
    MAX_ID_CHARS,
    ROW_FIELD,
    Product,
    RowError,
)
from copygen.catalogue.value_checks import clip, control_code, kind_of, wrong_type
from copygen.prompt import attributes_text
from copygen.textnorm import normalise

log = logging.getLogger(__name__)

COLUMN_ALIASES = {
    "external_id": ("external_id", "id", "sku", "product_id", "商品ID", "商品编号", "货号"),
    "title": ("title", "name", "product_name", "标题", "商品名称", "商品标题"),
    "category": ("category", "类目", "类别", "品类"),
    "attributes": ("attributes", "attrs", "属性"),
    "description": ("description", "desc", "描述", "商品描述"),
}


def _column_key(name: Any) -> str:
    """A header's normal form: normalised, lower case, runs of spaces and hyphens as one underscore."""
    return re.sub(r"[\s\-]+", "_", normalise(str(name)).lower())


_CANONICAL = {_column_key(alias): name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}
# The accepted id columns as error messages list them: "external_id, or one of id, sku, ...".
ID_COLUMNS = f"{COLUMN_ALIASES['external_id'][0]}, or one of {', '.join(COLUMN_ALIASES['external_id'][1:])}"


@dataclass(frozen=True)
class Unreadable:
    """A row a reader could not turn into a mapping (a bad JSON line, too many CSV fields)."""

    reason: str


def column_name(name: Any) -> str:
    """The canonical field a column header stands for, or the header's normal form if unknown."""
    text = _column_key(name)
    return _CANONICAL.get(text, text)


def _resolve_columns(keys: tuple[Any, ...]) -> tuple[dict[str, Any], dict[str, list[Any]], list[Any]]:
    """(field -> key, field -> keys when several columns give it, unknown keys)."""
    found: dict[str, list[Any]] = {}
    unknown = []
    for key in keys:
        name = column_name(key)
        if name in FIELD_LIMITS:
            found.setdefault(name, []).append(key)
        else:
            unknown.append(key)
    columns = {name: keys_[0] for name, keys_ in found.items()}
    clashes = {name: keys_ for name, keys_ in found.items() if len(keys_) > 1}
    return columns, clashes, unknown


def _blank(value: Any) -> bool:
    """None, NaN (pandas' empty cell) or text with nothing visible in it."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not normalise(value)


def _clean_id(value: Any) -> str:
    if _blank(value):
        raise ValueError(f"missing: every product needs an id (column {ID_COLUMNS})")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise wrong_type("expected text", value)
    if isinstance(value, int):
        if value.bit_length() > 4 * MAX_ID_CHARS:  # too long anyway; str() would refuse huge ints
            raise ValueError(f"is longer than the maximum of {MAX_ID_CHARS} characters")
        value = str(value)
    text = value.strip()
    bad = next((ch for ch in text if ch != " " and not ch.isprintable()), None)  # zero-width, control, tab...
    if bad is not None:
        raise ValueError(f"contains U+{ord(bad):04X}, an invisible, control or special space character; "
                         "ids are kept exactly as given, so remove it")
    if len(text) > MAX_ID_CHARS:
        raise ValueError(f"is {len(text)} characters long; the maximum is {MAX_ID_CHARS}")
    return text


def _clean_text(name: str, value: Any) -> str:
    if value is None or isinstance(value, float) and math.isnan(value):
        return ""
    if not isinstance(value, str):
        raise wrong_type("expected text", value)
    text = normalise(value)
    limit = FIELD_LIMITS[name]
    if len(text) > limit:
        raise ValueError(f"is {len(text)} characters long; the maximum is {limit}")
    code = control_code(text)
    if code:
        raise ValueError(f"contains the prompt control code {code}; remove it")
    if name == "category":
        for sep in ATTRIBUTE_SEPARATORS:
            if sep in text:
                raise ValueError(f"contains {sep!r}, which separates attributes in the prompt")
    return text


def _clean_attributes(value: Any) -> dict[str, list[str]]:
    attributes = parse_attributes(value)
    size = len(attributes_text(attributes))
    if size > MAX_ATTRIBUTES_CHARS:
        raise ValueError(f"are {size} characters long as key#value text; the maximum is {MAX_ATTRIBUTES_CHARS}")
    return attributes


class _ProductValidator:
    """Validates rows one by one, remembering ids (duplicates) and unknown columns (logged once)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.products: list[Product] = []
        self.errors: list[RowError] = []
        self.first_row: dict[str, int] = {}
        self.unknown: dict[str, None] = {}  # the first 20 unknown column names, in order
        self.more_unknown = False
        self._columns: dict[tuple[Any, ...], tuple] = {}

    def add(self, row_no: int, row: Any) -> None:
        errors: list[RowError] = []

        def reject(name: str, reason: str) -> None:
            errors.append(RowError(self.source, row_no, name, reason))

        if isinstance(row, Unreadable):
            reject(ROW_FIELD, row.reason)
        elif not isinstance(row, Mapping):
            reject(ROW_FIELD, f"expected an object with fields {', '.join(FIELDS)}, got {kind_of(row)}")
        else:
            self._add_mapping(row_no, row, errors, reject)
        self.errors.extend(errors)

    def _add_mapping(self, row_no: int, row: Mapping, errors: list[RowError], reject) -> None:
        keys = tuple(row.keys())
        resolved = self._columns.get(keys)
        if resolved is None:
            resolved = _resolve_columns(keys)
            if len(self._columns) < 1000:
                self._columns[keys] = resolved
        columns, clashes, unknown = resolved
        for key in unknown:
            if len(self.unknown) < 20:
                self.unknown.setdefault(str(key), None)
            elif str(key) not in self.unknown:
                self.more_unknown = True
        values: dict[str, Any] = {}
        for name in FIELDS:
            if name in clashes:
                given = " and ".join(repr(str(key)) for key in clashes[name])
                reject(name, f"given by more than one column ({given}); keep one")
                continue
            raw = row[columns[name]] if name in columns else None
            try:
                if name == "external_id":
                    values[name] = _clean_id(raw)
                elif name == "attributes":
                    values[name] = _clean_attributes(raw)
                else:
                    values[name] = _clean_text(name, raw)
            except ValueError as exc:
                reject(name, str(exc))
        external_id = values.get("external_id")
        if external_id is not None:
            first = self.first_row.setdefault(external_id, row_no)
            if first != row_no:
                reject("external_id", f"duplicate id {clip(external_id)!r}, first given in row {first}; "
                                      "only the first occurrence is used")
        if errors:
            return
        product = Product(**values)
        if not product.source():
            reject("title", "the product has no title, category, attributes or description; "
                            "the model needs at least one to write about")
            return
        self.products.append(product)

    def finish(self) -> tuple[list[Product], list[RowError]]:
        if self.unknown:
            names = [repr(clip(name)) for name in self.unknown] + (["..."] if self.more_unknown else [])
            log.warning("%s: ignoring unknown columns %s (known: %s and their aliases)",
                        self.source, ", ".join(names), ", ".join(FIELDS))
        return self.products, self.errors


def validate_numbered(rows: Iterable[tuple[int, Any]], source: str) -> tuple[list[Product], list[RowError]]:
    validator = _ProductValidator(source)
    for row_no, row in rows:
        validator.add(row_no, row)
    return validator.finish()


def validate_products(rows: Iterable[Mapping[str, Any]], source: str = "payload") -> tuple[list[Product], list[RowError]]:
    """Valid products, and a RowError for every problem of every rejected row (row 1 = rows[0]).

    Never raises for bad data: a row that is not a mapping, a wrong type, a missing id, bad
    attributes, an over-long field or a duplicate id each become RowErrors; the rest go through.
    """
    return validate_numbered(enumerate(rows, 1), source)
