"""The catalogue schema: products and job settings, read from files or a payload, validated row by row.

A product is an external id (the merchant's key, e.g. SKU-0001), a title, a category, attributes
and a free description. Attributes are ``dict[str, list[str]]`` in insertion order, written in
files either as AdvertiseGen's ``类型#上衣*颜色#白色*颜色#黑色`` (a key may repeat) or as a JSON
object ``{"类型": "上衣", "颜色": ["白色", "黑色"]}``.

Validation never lets one bad row poison a job: every problem becomes a :class:`RowError` naming
the source, the row and the field, and the other rows go through. The rules:

* Columns: ``external_id`` (aliases ``id``, ``sku``, ``product_id``, 商品ID, 商品编号, 货号), ``title``
  (``name``, 标题, 商品名称), ``category`` (类目, 类别, 品类), ``attributes`` (``attrs``, 属性),
  ``description`` (``desc``, 描述, 商品描述). Column names are matched case-insensitively, with
  spaces and hyphens read as underscores ("External ID" is external_id). Unknown columns are
  ignored and logged once per file or payload at WARNING; they are not row errors.
* Row numbers are 1-based and count data rows only, the way the user finds them in the file:

  - CSV/TSV: row N is the N-th line under the header, blank lines included, so row N is file line
    N + 1 when the header is line 1 (a value spanning several lines shifts this by its extra lines).
  - XLSX: row N is the N-th sheet row under the header: sheet row N + 1 when the header is row 1.
  - JSON Lines: row N is line N (there is no header). A JSON array file: row N is element N.
  - A payload: row N is ``products[N - 1]``.

  Wholly blank lines/rows are skipped without an error but keep their number.
* The id is trimmed and otherwise kept exactly (it is the merchant's join key): an id with an
  invisible or control character is rejected rather than silently changed. An integer id (JSON)
  is accepted as its decimal text.
* Text fields are normalised with :func:`copygen.textnorm.normalise` (zero-width characters
  dropped, control characters and whitespace runs become one space, full-width ASCII folded). HTML, SQL-looking text
  and emoji are plain text and pass through unchanged. Text may not contain the prompt's control
  codes ([SEP], [EOS], ...); category and attributes may not contain ``#`` or ``*``, which
  separate attribute pairs in the prompt.
* Limits, counted in characters after normalisation: the MAX_*_CHARS constants below. The
  attributes limit applies to their AdvertiseGen text ``k#v*k#v``.
* The same id twice in one job: the first occurrence is kept, every later one is rejected
  (also when the first one was itself rejected for another reason, so a job's content never
  depends on which duplicate happens to be valid).
* A product needs something to write about: a title, category, attributes or description.
* In AdvertiseGen text, an empty segment (a trailing or doubled ``*``) is ignored; a segment
  without ``#``, with an empty key or value, or with a second ``#`` is an error naming the pair.

Files (:func:`read_catalogue`, chosen by suffix) must be UTF-8, with or without a BOM, LF or CRLF.
Anything else (GBK, UTF-16, binary) is refused as a whole with the byte offset, never guessed.
CSV is parsed with the standard csv module rather than pandas so that a line with too many
fields is one row error, not a failed file, and no value is ever turned into NaN or a number;
a line with fewer fields is padded with blanks. XLSX is read through pandas/openpyxl (first
sheet, every cell as text). A ``.json`` file may hold JSON Lines, an array of products, one
product, or a payload ``{"products": [...]}``. A file that is empty, header-only or has no id
column (e.g. ';'-separated, read as one column) raises CatalogueError; so does any row error
under strict=True.

Job settings (:func:`validate_settings`) and the ``copygen.submit_job`` payload
(:func:`validate_payload`, schema in ``copygen/schemas/submit_job.schema.json``) are checked as
a whole: a bad or unknown key raises SettingsError naming every key at fault.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from copygen.prompt import LENGTHS, SPECIAL_TOKENS, STYLE_CODES, attributes_text, source_text
from copygen.textnorm import normalise

log = logging.getLogger(__name__)

# Product field limits, in characters after normalisation; the JSON Schema repeats them (a test checks).
MAX_ID_CHARS = 200
MAX_TITLE_CHARS = 300
MAX_CATEGORY_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_ATTRIBUTES_CHARS = 4000  # of the AdvertiseGen text k#v*k#v the model reads
# Job settings limits.
MAX_OPENING_CHARS = 30
MAX_TEMPERATURE = 2.0  # temperature is in (0, 2]
MAX_TOP_P = 1.0  # top_p is in (0, 1]
MAX_SEED = 2**32 - 1  # numpy's seed range, which transformers.set_seed passes the seed on to
MAX_NAME_CHARS = 200  # model_version, campaign
MAX_IDEMPOTENCY_KEY_CHARS = 200
QUEUES = ("batch", "interactive")
PAYLOAD_KEYS = ("products", "settings", "idempotency_key")
SCHEMA_FILE = "submit_job.schema.json"

FIELDS = ("external_id", "title", "category", "attributes", "description")
ROW_FIELD = "(row)"  # the field a RowError names when the row as a whole is unreadable
FIELD_LIMITS = {
    "external_id": MAX_ID_CHARS,
    "title": MAX_TITLE_CHARS,
    "category": MAX_CATEGORY_CHARS,
    "attributes": MAX_ATTRIBUTES_CHARS,
    "description": MAX_DESCRIPTION_CHARS,
}
COLUMN_ALIASES = {
    "external_id": ("external_id", "id", "sku", "product_id", "商品id", "商品编号", "货号"),
    "title": ("title", "name", "product_name", "标题", "商品名称", "商品标题"),
    "category": ("category", "类目", "类别", "品类"),
    "attributes": ("attributes", "attrs", "属性"),
    "description": ("description", "desc", "描述", "商品描述"),
}
_CANONICAL = {alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}
# What makes a file's row numbers readable; quoted in CatalogueError messages.
ROW_CONVENTIONS = {
    ".csv": "row N = the N-th line under the header",
    ".tsv": "row N = the N-th line under the header",
    ".xlsx": "row N = the N-th sheet row under the header",
    ".jsonl": "row N = line N",
    ".ndjson": "row N = line N",
    ".json": "row N = line N, or element N of a JSON array",
}
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_STRIP_INVISIBLE = dict.fromkeys(map(ord, _INVISIBLE), None)
_ATTRIBUTE_SEPARATORS = ("#", "*")
_MAX_LISTED_ERRORS = 20  # row errors quoted in one CatalogueError message


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Product:
    external_id: str
    title: str = ""
    category: str = ""
    attributes: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""

    def __hash__(self) -> int:  # frozen, but attributes is a dict: hash its text form
        return hash((self.external_id, self.title, self.category, attributes_text(self.attributes),
                     self.description))

    def prompt_attributes(self) -> dict[str, list[str]]:
        """The attributes the model reads: the category leads as 类型 unless 类型 is given."""
        if self.category and "类型" not in self.attributes:
            return {"类型": [self.category], **self.attributes}
        return dict(self.attributes)

    def source(self) -> str:
        """The product as the prompt states it: title | 类型#..*k#v | description."""
        return source_text(self.title, self.prompt_attributes(), self.description)

    def to_json(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "title": self.title,
            "category": self.category,
            "attributes": {key: list(values) for key, values in self.attributes.items()},
            "description": self.description,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Product:
        """The product a to_json() dict (a message, a db row) describes; attributes may be text."""
        if d.get("external_id") in (None, ""):
            raise ValueError("product has no external_id")
        return cls(
            external_id=str(d["external_id"]),
            title=d.get("title") or "",
            category=d.get("category") or "",
            attributes=parse_attributes(d.get("attributes")),
            description=d.get("description") or "",
        )


@dataclass(frozen=True)
class RowError:
    source: str  # file path, or "payload"
    row: int  # 1-based data row; see the module docstring for each format's convention
    field: str  # one of FIELDS, or ROW_FIELD when the row as a whole is unreadable
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: row {self.row}: field '{self.field}': {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class CatalogueError(ValueError):
    """A catalogue that cannot be read at all, or (strict mode) one with rejected rows."""

    def __init__(self, message: str, errors: Iterable[RowError] = ()) -> None:
        super().__init__(message)
        self.errors: list[RowError] = list(errors)


class SettingsError(ValueError):
    """Job settings or a payload that cannot be accepted; names every field at fault."""

    def __init__(self, problems: list[tuple[str, str]] | str, field_name: str = "settings") -> None:
        """problems: (field, reason) pairs; or one reason about field_name."""
        self.problems = [(field_name, problems)] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in self.problems))

    @property
    def fields(self) -> list[str]:
        return [name for name, _ in self.problems]


# --------------------------------------------------------------------------------------------
# Attributes


class _JsonObject(list):
    """A JSON object as its (key, value) pairs, so a repeated key keeps all its values."""


def _kind(value: Any) -> str:
    """How a JSON-minded user would name the type of value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({_clip(repr(value))})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (Mapping, _JsonObject)):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _wrong_type(expected: str, value: Any) -> ValueError:
    """A ValueError, not a TypeError: a wrong type in the data is bad data, reported like any other."""
    return ValueError(f"{expected}, got {_kind(value)}")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _blank(value: Any) -> bool:
    """None, NaN (pandas' empty cell) or text with nothing visible in it."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not normalise(value)


def _control_code(text: str) -> str | None:
    """The first prompt control code ([SEP], [EOS], ...) in text, if any."""
    if "[" not in text:
        return None
    return next((token for token in SPECIAL_TOKENS if token in text), None)


def _add_attribute(result: dict[str, list[str]], key: str, value: str, where: str, *, clean: bool = False) -> None:
    """Append key#value to result, normalising both unless clean (cut from normalised text)."""
    key, value = (key.strip(), value.strip()) if clean else (normalise(key), normalise(value))
    if not key:
        raise ValueError(f"{where} has an empty key")
    if not value:
        raise ValueError(f"{where} has an empty value")
    for part, text in (("key", key), ("value", value)):
        for sep in _ATTRIBUTE_SEPARATORS:
            if sep in text:
                raise ValueError(
                    f"{where}: {part} {_clip(text)!r} contains {sep!r}, which separates attributes "
                    "in the prompt (write 120×80cm rather than 120*80cm)"
                )
        code = _control_code(text)
        if code:
            raise ValueError(f"{where}: {part} {_clip(text)!r} contains the prompt control code {code}")
    result.setdefault(key, []).append(value)


def _attributes_from_pairs(text: str) -> dict[str, list[str]]:
    """Attributes from normalised AdvertiseGen text."""
    result: dict[str, list[str]] = {}
    for number, pair in enumerate(text.split("*"), 1):
        pair = pair.strip()
        if not pair:  # a trailing or doubled '*' separates nothing
            continue
        where = f"pair {number} {_clip(pair)!r}"
        if "#" not in pair:
            raise ValueError(f"{where} has no '#'; write key#value pairs separated by '*', "
                             "e.g. 类型#上衣*颜色#白色")
        key, _, value = pair.partition("#")
        _add_attribute(result, key, value, where, clean=True)
    return result


def _attributes_from_items(items: Iterable[tuple[Any, Any]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for key, raw in items:
        if not isinstance(key, str):
            raise _wrong_type(f"key {_clip(repr(key))} must be text", key)
        where = f"key {_clip(key)!r}"
        values = list(raw) if isinstance(raw, (list, tuple)) and not isinstance(raw, _JsonObject) else [raw]
        if not values:
            raise ValueError(f"{where} has an empty list of values")
        for value in values:
            if not isinstance(value, str):
                raise _wrong_type(f"{where}: a value must be text or a list of text", value)
            _add_attribute(result, key, value, where)
    return result


def _attributes_from_json(text: str) -> dict[str, list[str]]:
    try:
        data = json.loads(text, object_pairs_hook=_JsonObject)
    except json.JSONDecodeError as exc:
        raise ValueError(f"looks like JSON but is not valid JSON ({exc.msg} at character {exc.pos + 1})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(data, _JsonObject):
        raise _wrong_type("expected a JSON object of key: value or key: [values]", data)
    return _attributes_from_items(data)


def parse_attributes(value: str | Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Attributes as dict[str, list[str]] from AdvertiseGen text, JSON object text or a mapping.

    None, "", whitespace and NaN mean no attributes. Keys and values are normalised; a key that
    repeats (类型#上衣*图案#复古*图案#线条) keeps every value in order. Raises ValueError with a
    reason that names the pair or key at fault.
    """
    if value is None or isinstance(value, float) and math.isnan(value):
        return {}
    if isinstance(value, str):
        text = normalise(value)
        if text.startswith(("{", "[")):  # parse the original: normalising could fold a ＂ into a "
            return _attributes_from_json(value.translate(_STRIP_INVISIBLE).strip())
        return _attributes_from_pairs(text)
    if isinstance(value, Mapping):
        return _attributes_from_items(value.items())
    raise _wrong_type("expected text like 类型#上衣*颜色#白色 or a JSON object", value)


# --------------------------------------------------------------------------------------------
# Products


@dataclass(frozen=True)
class _Unreadable:
    """A row a reader could not turn into a mapping (a bad JSON line, too many CSV fields)."""

    reason: str


def column_name(name: Any) -> str:
    """The canonical field a column header stands for, or the header's normal form if unknown."""
    text = re.sub(r"[\s\-]+", "_", normalise(str(name)).lower())
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


def _clean_id(value: Any) -> str:
    if _blank(value):
        raise ValueError("missing: every product needs an id (column external_id, id, sku or product_id)")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _wrong_type("expected text", value)
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
        raise _wrong_type("expected text", value)
    text = normalise(value)
    limit = FIELD_LIMITS[name]
    if len(text) > limit:
        raise ValueError(f"is {len(text)} characters long; the maximum is {limit}")
    code = _control_code(text)
    if code:
        raise ValueError(f"contains the prompt control code {code}; remove it")
    if name == "category":
        for sep in _ATTRIBUTE_SEPARATORS:
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

        if isinstance(row, _Unreadable):
            reject(ROW_FIELD, row.reason)
        elif not isinstance(row, Mapping):
            reject(ROW_FIELD, f"expected an object with fields {', '.join(FIELDS)}, got {_kind(row)}")
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
                reject("external_id", f"duplicate id {_clip(external_id)!r}, first given in row {first}; "
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
            names = [repr(_clip(name)) for name in self.unknown] + (["..."] if self.more_unknown else [])
            log.warning("%s: ignoring unknown columns %s (known: %s and their aliases)",
                        self.source, ", ".join(names), ", ".join(FIELDS))
        return self.products, self.errors


def _validate_numbered(rows: Iterable[tuple[int, Any]], source: str) -> tuple[list[Product], list[RowError]]:
    validator = _ProductValidator(source)
    for row_no, row in rows:
        validator.add(row_no, row)
    return validator.finish()


def validate_products(rows: Iterable[Mapping[str, Any]], source: str = "payload") -> tuple[list[Product], list[RowError]]:
    """Valid products, and a RowError for every problem of every rejected row (row 1 = rows[0]).

    Never raises for bad data: a row that is not a mapping, a wrong type, a missing id, bad
    attributes, an over-long field or a duplicate id each become RowErrors; the rest go through.
    """
    return _validate_numbered(enumerate(rows, 1), source)


# --------------------------------------------------------------------------------------------
# Files


def _read_text(path: Path) -> str:
    """The file's text, strictly UTF-8 (a BOM is allowed); anything else is named, not guessed."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CatalogueError(f"{path}: the file is UTF-16 (a \"Unicode text\" export); save it as UTF-8")
    if data.startswith(b"PK\x03\x04") and path.suffix.lower() != ".xlsx":
        raise CatalogueError(f"{path}: the file is a zip archive (an Excel workbook?), not text; "
                             "save it as .xlsx or export it as UTF-8 CSV")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise CatalogueError(f"{path}: byte offset {nul}: a NUL byte; this is a binary file, not UTF-8 text")
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        line = data.count(b"\n", 0, offset) + 1
        snippet = data[offset: offset + 4]
        try:
            data[bom:].decode("gbk")
        except UnicodeDecodeError:
            advice = "Save the file as UTF-8 and try again"
        else:
            advice = ("It decodes as GBK (GB2312/GB18030), which Chinese Windows and Excel often write; "
                      f"save it as UTF-8 (e.g. iconv -f GBK -t UTF-8 {path.name} > utf8{path.suffix}) "
                      "and try again")
        raise CatalogueError(f"{path}: not UTF-8: invalid byte(s) {snippet!r} at byte offset {offset} "
                             f"(line {line}). {advice}") from None


def _no_products(path: Path, why: str) -> CatalogueError:
    return CatalogueError(f"{path}: no products: {why}")


def _table_rows(path: Path, records: list[list[str]]) -> list[tuple[int, Any]]:
    """Numbered row mappings from a header record and data records (CSV, XLSX)."""
    start = next((i for i, record in enumerate(records) if any(cell.strip() for cell in record)), None)
    if start is None:
        raise _no_products(path, "the file is empty")
    header = [cell.strip() or f"(column {i + 1})" for i, cell in enumerate(records[start])]
    seen: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = column_name(cell)
        if name in seen and name in FIELD_LIMITS:
            raise CatalogueError(f"{path}: header: columns {seen[name] + 1} ({header[seen[name]]!r}) and "
                                 f"{i + 1} ({cell!r}) both give {name!r}; keep one")
        seen[name] = i
    if "external_id" not in seen:
        found = ", ".join(repr(cell) for cell in header)
        hint = ""
        if len(header) == 1:
            sep = next((s for s in (";", "\t", "|", "，") if s in header[0]), None)
            if sep:
                hint = (f"; the header holds one column with {sep!r} in it: save the file with commas "
                        "between columns")
        raise CatalogueError(f"{path}: no id column (external_id, or one of id, sku, product_id); "
                             f"found column(s) {found}{hint}")
    rows: list[tuple[int, Any]] = []
    width = len(header)
    for row_no, record in enumerate(records[start + 1:], 1):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > width:
            if any(cell.strip() for cell in record[width:]):
                rows.append((row_no, _Unreadable(
                    f"has {len(record)} fields but the header has {width}; quote values that contain "
                    "the separator")))
                continue
            record = record[:width]  # trailing empty cells, e.g. "a,b," under "x,y"
        record = list(record) + [""] * (width - len(record))
        rows.append((row_no, dict(zip(header, record))))
    if not rows:
        raise _no_products(path, "a header row but no data rows")
    return rows


def _read_delimited(path: Path, delimiter: str) -> list[tuple[int, Any]]:
    text = _read_text(path)
    if not text.strip():
        raise _no_products(path, "the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise CatalogueError(f"{path}: line {reader.line_num}: not valid CSV ({exc}); "
                             "check the quotes around that line") from None
    return _table_rows(path, records)


def _read_xlsx(path: Path) -> list[tuple[int, Any]]:
    import pandas as pd  # heavy: imported only when a workbook is read

    try:
        with pd.ExcelFile(path, engine="openpyxl") as workbook:
            sheets = workbook.sheet_names
            frame = pd.read_excel(workbook, sheet_name=0, header=None, dtype=str, keep_default_na=False)
    except ImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile, XML and openpyxl raise many types for a damaged file
        raise CatalogueError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    if len(sheets) > 1:
        log.warning("%s: reading the first sheet %r; %d other sheet(s) ignored", path, sheets[0], len(sheets) - 1)
    records = [["" if not isinstance(cell, str) else cell for cell in record] for record in frame.values.tolist()]
    return _table_rows(path, records)


def _json_line_rows(path: Path, text: str) -> list[tuple[int, Any]]:
    rows: list[tuple[int, Any]] = []
    for line_no, line in enumerate(text.split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
        line = line.strip()
        if not line:
            continue
        try:
            rows.append((line_no, json.loads(line)))
        except json.JSONDecodeError as exc:
            rows.append((line_no, _Unreadable(f"not valid JSON ({exc.msg} at column {exc.colno})")))
        except RecursionError:
            rows.append((line_no, _Unreadable("JSON nested too deeply")))
    return rows


def _read_json(path: Path) -> list[tuple[int, Any]]:
    rows = _json_rows(path)
    objects = [row for _, row in rows if isinstance(row, Mapping)]
    if objects and not any(column_name(key) == "external_id" for row in objects for key in row):
        found = list(dict.fromkeys(str(key) for row in objects[:100] for key in row))
        raise CatalogueError(f"{path}: no row has an id (external_id, or one of id, sku, product_id); "
                             f"found field(s) {', '.join(repr(_clip(key)) for key in found[:20]) or 'none'}")
    return rows


def _json_rows(path: Path) -> list[tuple[int, Any]]:
    text = _read_text(path)
    if not text.strip():
        raise _no_products(path, "the file is empty")
    if path.suffix.lower() == ".json":  # one JSON document (an array of products, a payload) or JSON Lines
        try:
            document = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            document = None
        if isinstance(document, Mapping):
            document = document["products"] if isinstance(document.get("products"), list) else [document]
        if isinstance(document, list):
            if not document:
                raise _no_products(path, "an empty JSON array")
            return list(enumerate(document, 1))
    rows = _json_line_rows(path, text)
    if not rows:
        raise _no_products(path, "only blank lines")
    return rows


_READERS = {
    ".csv": lambda path: _read_delimited(path, ","),
    ".tsv": lambda path: _read_delimited(path, "\t"),
    ".xlsx": _read_xlsx,
    ".jsonl": _read_json,
    ".ndjson": _read_json,
    ".json": _read_json,
}


def rejection_message(source: str, errors: list[RowError], convention: str = "") -> str:
    """A multi-line summary of row errors: a count, then one line per error (the first 20)."""
    rows = len({error.row for error in errors})
    head = f"{source}: {rows} row(s) rejected, {len(errors)} problem(s)"
    if convention:
        head += f" ({convention})"
    lines = [head, *(f"  {error}" for error in errors[:_MAX_LISTED_ERRORS])]
    if len(errors) > _MAX_LISTED_ERRORS:
        lines.append(f"  ... and {len(errors) - _MAX_LISTED_ERRORS} more")
    return "\n".join(lines)


def read_catalogue(path: str | Path, strict: bool = False) -> tuple[list[Product], list[RowError]]:
    """Products and row errors from a .csv, .tsv, .xlsx, .jsonl/.ndjson or .json catalogue.

    Raises CatalogueError for a file that cannot be read as a whole: a missing file, an unknown
    suffix, text that is not UTF-8 (named with its byte offset), a binary file, an empty or
    header-only file, no id column (e.g. a ';'-separated file read as one column), a broken
    quote. With strict=True, any row error also raises, listing the errors in .errors.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        advice = "; save it as .xlsx" if suffix == ".xls" else ""
        raise CatalogueError(f"{path}: unsupported file type {suffix or '(none)'!r}{advice}; "
                             f"use one of {', '.join(_READERS)}")
    if not path.is_file():
        raise CatalogueError(f"{path}: no such file")
    products, errors = _validate_numbered(reader(path), str(path))
    log.info("%s: %d products read, %d row(s) rejected", path, len(products), len({e.row for e in errors}))
    if strict and errors:
        raise CatalogueError(rejection_message(str(path), errors, ROW_CONVENTIONS[suffix]), errors)
    return products, errors


# --------------------------------------------------------------------------------------------
# Job settings and the submit payload


@dataclass(frozen=True)
class JobSettings:
    variants: int = 3  # copies per product
    length: str = "medium"  # one of prompt.LENGTHS
    style: str = "ad"  # one of prompt.STYLE_CODES
    opening: str = ""  # the phrase every copy starts with, e.g. 新品上市，
    temperature: float = 0.95
    top_p: float = 0.7
    seed: int | None = None  # None: a fresh seed per chunk
    model_version: str | None = None  # None: the model the worker serves
    queue: str = "batch"  # one of QUEUES
    campaign: str | None = None  # a label campaign tools select by

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _whole_number(value: Any) -> int:
    """An int, or a float with no fractional part (JSON does not tell 3 from 3.0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type("must be a whole number", value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"must be a whole number, not {value!r}")
        value = int(value)
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type("must be a number", value)
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value!r}")
    return float(value)


def _choice(options: Iterable[str]):
    options = tuple(options)

    def check(value: Any, _max_variants: int) -> str:
        if value not in options or not isinstance(value, str):
            raise ValueError(f"must be one of {', '.join(options)}, not {_clip(repr(value))}")
        return value

    return check


def _check_variants(value: Any, max_variants: int) -> int:
    n = _whole_number(value)
    if not 1 <= n <= max_variants:
        raise ValueError(f"must be from 1 to {max_variants} (COPYGEN_MAX_VARIANTS), not {n}")
    return n


def _check_temperature(value: Any, _max_variants: int) -> float:
    t = _number(value)
    if not 0 < t <= MAX_TEMPERATURE:
        raise ValueError(f"must be above 0 and at most {MAX_TEMPERATURE:g}, not {t:g}")
    return t


def _check_top_p(value: Any, _max_variants: int) -> float:
    p = _number(value)
    if not 0 < p <= MAX_TOP_P:
        raise ValueError(f"must be above 0 and at most {MAX_TOP_P:g}, not {p:g}")
    return p


def _check_seed(value: Any, _max_variants: int) -> int | None:
    if value is None:
        return None
    n = _whole_number(value)
    if not 0 <= n <= MAX_SEED:
        raise ValueError(f"must be from 0 to {MAX_SEED}, not {n}")
    return n


def _check_opening(value: Any, _max_variants: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong_type("must be text", value)
    text = normalise(value)
    if len(text) > MAX_OPENING_CHARS:
        raise ValueError(f"is {len(text)} characters long; the maximum is {MAX_OPENING_CHARS}")
    code = _control_code(text)
    if code:
        raise ValueError(f"contains the prompt control code {code}")
    return text


def _check_name(value: Any, _max_variants: int) -> str | None:
    """model_version, campaign: optional names; "" means not given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong_type("must be text or null", value)
    text = normalise(value)
    if len(text) > MAX_NAME_CHARS:
        raise ValueError(f"is {len(text)} characters long; the maximum is {MAX_NAME_CHARS}")
    return text or None


_SETTING_CHECKS = {
    "variants": _check_variants,
    "length": _choice(LENGTHS),
    "style": _choice(STYLE_CODES),
    "opening": _check_opening,
    "temperature": _check_temperature,
    "top_p": _check_top_p,
    "seed": _check_seed,
    "model_version": _check_name,
    "queue": _choice(QUEUES),
    "campaign": _check_name,
}


def validate_settings(d: Mapping[str, Any] | None, max_variants: int) -> JobSettings:
    """JobSettings from a mapping of overrides; SettingsError names every bad or unknown key."""
    if d is None:
        return JobSettings()
    if not isinstance(d, Mapping):
        raise SettingsError([("settings", f"expected an object, got {_kind(d)}")])
    problems: list[tuple[str, str]] = []
    problems.extend((_clip(str(key)), f"unknown setting; known: {', '.join(_SETTING_CHECKS)}")
                    for key in d if key not in _SETTING_CHECKS)
    values = {}
    for name, check in _SETTING_CHECKS.items():
        if name in d:
            try:
                values[name] = check(d[name], max_variants)
            except ValueError as exc:
                problems.append((name, str(exc)))
    if problems:
        raise SettingsError(problems)
    return JobSettings(**values)


def validate_payload(
    payload: Mapping[str, Any], max_variants: int, max_products: int
) -> tuple[list[Product], list[RowError], JobSettings, str | None]:
    """(products, row errors, settings, idempotency key) from a copygen.submit_job payload.

    The payload is {"products": [...], "settings": {...}, "idempotency_key": str | null};
    "products" is required, the others may be left out. A payload that is wrong as a whole (not
    an object, an unknown or missing key, products not a list, empty or over max_products, bad
    settings) raises SettingsError naming every key at fault; bad products are row errors.
    """
    if not isinstance(payload, Mapping):
        raise SettingsError([("payload", f"expected an object, got {_kind(payload)}")])
    problems: list[tuple[str, str]] = []
    problems.extend((_clip(str(key)), f"unknown payload key; known: {', '.join(PAYLOAD_KEYS)}")
                    for key in payload if key not in PAYLOAD_KEYS)
    rows = payload.get("products")
    if "products" not in payload:
        problems.append(("products", "missing; the payload needs a list of products"))
    elif not isinstance(rows, (list, tuple)):
        problems.append(("products", f"expected a list of product objects, got {_kind(rows)}"))
    elif not rows:
        problems.append(("products", "is empty; a job needs at least one product"))
    elif len(rows) > max_products:
        problems.append(("products", (f"{len(rows)} products, more than the maximum of {max_products} "
                                      "per job (COPYGEN_MAX_PRODUCTS); split the catalogue into several jobs")))
    key = payload.get("idempotency_key")
    if key is not None:
        if not isinstance(key, str):
            problems.append(("idempotency_key", f"expected text or null, got {_kind(key)}"))
        elif not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
            problems.append(("idempotency_key", (f"must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, "
                                                 f"not {len(key)}; send null for no key")))
    settings = JobSettings()
    try:
        settings = validate_settings(payload.get("settings"), max_variants)
    except SettingsError as exc:
        problems.extend((f"settings.{name}" if name != "settings" else name, reason)
                        for name, reason in exc.problems)
    if problems:
        raise SettingsError(problems)
    products, errors = validate_products(rows, source="payload")
    return products, errors, settings, key


def submit_job_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the copygen.submit_job payload, read from the package."""
    text = resources.files("copygen").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)
