"""Reading a catalogue file (CSV, TSV, XLSX, JSON Lines, JSON) into Products and RowErrors.

Files (:func:`read_catalogue`, chosen by suffix) must be UTF-8, with or without a BOM, LF or CRLF.
Anything else (GBK, UTF-16, binary) is refused as a whole with the byte offset, never guessed.
CSV is parsed with the standard csv module rather than pandas so that a line with too many
fields is one row error, not a failed file, and no value is ever turned into NaN or a number;
a line with fewer fields is padded with blanks. XLSX is read through pandas/openpyxl (first
sheet, every cell as text). A ``.json`` file may hold JSON Lines, an array of products, one
product, or a payload ``{"products": [...]}``. A file that is empty, header-only or has no id
column (e.g. ';'-separated, read as one column) raises CatalogueError; so does any row error
under strict=True. The rows themselves are validated by :mod:`copygen.catalogue.rows`.

Row numbers are 1-based and count data rows only, the way the user finds them in the file:

- CSV/TSV: row N is the N-th line under the header, blank lines included, so row N is file line
  N + 1 when the header is line 1 (a value spanning several lines shifts this by its extra lines).
- XLSX: row N is the N-th sheet row under the header: sheet row N + 1 when the header is row 1.
- JSON Lines: row N is line N (there is no header). A JSON array file: row N is element N.

Wholly blank lines/rows are skipped without an error but keep their number.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from copygen.catalogue.products import FIELD_LIMITS, CatalogueError, Product, RowError
from copygen.catalogue.rows import ID_COLUMNS, Unreadable, column_name, validate_numbered
from copygen.catalogue.value_checks import clip

log = logging.getLogger(__name__)

# What makes a file's row numbers readable; quoted in CatalogueError messages.
ROW_CONVENTIONS = {
    ".csv": "row N = the N-th line under the header",
    ".tsv": "row N = the N-th line under the header",
    ".xlsx": "row N = the N-th sheet row under the header",
    ".jsonl": "row N = line N",
    ".ndjson": "row N = line N",
    ".json": "row N = line N, or element N of a JSON array",
}
_MAX_LISTED_ERRORS = 20  # row errors quoted in one CatalogueError message


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
        raise CatalogueError(f"{path}: no id column ({ID_COLUMNS}); "
                             f"found column(s) {found}{hint}")
    rows: list[tuple[int, Any]] = []
    width = len(header)
    for row_no, record in enumerate(records[start + 1:], 1):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > width:
            if any(cell.strip() for cell in record[width:]):
                rows.append((row_no, Unreadable(
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
            rows.append((line_no, Unreadable(f"not valid JSON ({exc.msg} at column {exc.colno})")))
        except RecursionError:
            rows.append((line_no, Unreadable("JSON nested too deeply")))
    return rows


def _read_json(path: Path) -> list[tuple[int, Any]]:
    rows = _json_rows(path)
    objects = [row for _, row in rows if isinstance(row, Mapping)]
    if objects and not any(column_name(key) == "external_id" for row in objects for key in row):
        found = list(dict.fromkeys(str(key) for row in objects[:100] for key in row))
        raise CatalogueError(f"{path}: no row has an id ({ID_COLUMNS}); "
                             f"found field(s) {', '.join(repr(clip(key)) for key in found[:20]) or 'none'}")
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
    products, errors = validate_numbered(reader(path), str(path))
    log.info("%s: %d products read, %d row(s) rejected", path, len(products), len({e.row for e in errors}))
    if strict and errors:
        raise CatalogueError(rejection_message(str(path), errors, ROW_CONVENTIONS[suffix]), errors)
    return products, errors
