"""Readers for training data: product -> copy pairs, and plain text for domain pre-training.

Every reader yields ``Pair(source, copy, style, origin)``, with both texts passed through
``copygen.textnorm.normalise`` and ``origin`` = ``"path:line"`` so any example can be traced back
to the row it came from. Formats, detected per file:

* **AdvertiseGen** JSON Lines (``{"content": "类型#裤*版型#宽松", "summary": "..."}``, detected by
  its keys): the source is the attribute string re-written by ``copygen.prompt.attributes_text``
  (keys and values normalised, the same form the worker builds from a catalogue); style "ad".
* **Taobao KOBE / TaoDescribe**: ``test.src.str`` (or its directory) pairs line by line with
  ``test.tgt.str``. A source line is ``<aspect> <user-category> t i t l e ...``; the two tags are
  stripped and the space-separated characters joined, so the source is the product title; the
  copy is the description; style "description".
* **Merchant tables**: CSV/TSV/Excel (via pandas) or JSON Lines with columns the user names:
  ``input_column`` (one or several, comma-separated, joined by ``prompt.SOURCE_JOINER``) and
  ``output_column``; style as the user says (default "ad").
* **Plain text** (``.txt``) for pre-training, through ``read_texts``: one text per non-empty line.

Files are decoded as UTF-8 strictly; a file that is not UTF-8 is tried as GBK (the encoding of the
AdvertiseGen copy we found, and of most CSVs that Chinese Excel saves) and the report says so.

Bad rows (invalid JSON, a missing key, a wrong type, empty text, ...) do not stop the read: they
are counted by reason and listed as ``"path:line: reason (detail)"`` (the first 50 shown). A file
that cannot be read at all - missing, undecodable, not JSON Lines, without a named column, or a
KOBE pair whose two files differ in line count - raises ``DataError`` naming the file (and column).

AdvertiseGen artefacts, a decision
----------------------------------
The original preprocessing left two placeholders in the summaries (see the data README):

* ``<UNK>`` stands for a character the authors' vocabulary lost; it is in 31% of the rows (1,553 of
  the 5,000 we have), too many to drop. Keeping it would teach the model to write "<UNK>" into
  merchant copy, and as a special token it would still be a hole in the sentence. We remove the
  literal and keep the row: the sentence loses one character, usually a particle or a rare word,
  which costs less than losing a third of the data. The number removed is reported
  (``unk_removed``, ``unk_rows``). The clauses that lost one are kept on the pair (``Pair.torn``):
  the model may learn from them, but the clause book (trainer.clausebook) must not hand a torn
  clause ("让你在中也能自由出行", where 人群 was lost) to a job as a clause people wrote.
* ``BRAND`` replaces a brand name (234 of 5,000 rows). Removing it leaves a sentence about nobody
  ("是一款很百搭的单品" without its subject), and keeping it teaches the model to write "BRAND",
  which must never reach a merchant. Those rows are dropped, as bad rows with reason
  ``brand_placeholder``.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from copygen.prompt import SOURCE_JOINER, STYLE_CODES, attributes_text
from copygen.textnorm import normalise
from trainer.wordpairs import clauses

log = logging.getLogger(__name__)

MAX_BAD_ROWS_SHOWN = 50  # the report lists this many bad rows; the counts cover all of them
UNK_LITERAL = "<UNK>"  # AdvertiseGen: a character lost in the original preprocessing
BRAND_PLACEHOLDER = "BRAND"  # AdvertiseGen: a brand name replaced by a placeholder
JSONL_SUFFIXES = (".json", ".jsonl")
TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xlsm", ".xls")
KOBE_SRC_SUFFIX, KOBE_TGT_SUFFIX = ".src.str", ".tgt.str"

PathLike = str | os.PathLike
_LOST = "\u303f"  # stands for <UNK> while a summary is split into clauses: printable, never a clause mark


class DataError(ValueError):
    """A file that cannot be read as training data; the message names the file (and column)."""


@dataclass(frozen=True)
class Pair:
    source: str  # what the model is told about the product (prompt.source_text form)
    copy: str  # the marketing text it learns to write
    style: str  # a key of prompt.STYLE_CODES
    origin: str  # "path:line" of the row it came from
    torn: tuple[str, ...] = ()  # the copy's clauses that lost a character (<UNK>), as they read without it


@dataclass(frozen=True)
class _InvalidJson:
    message: str  # json.JSONDecodeError.msg of a JSON Lines line


class _Report:
    """Counts and the first bad rows of one read_pairs / read_texts call."""

    def __init__(self) -> None:
        self.files: list[dict] = []
        self.bad_by_reason: Counter[str] = Counter()
        self.bad_rows: list[str] = []
        self.notes: list[str] = []
        self.unk_removed = 0
        self.unk_rows = 0

    def bad(self, path: Path, line: int, reason: str, detail: str = "") -> None:
        self.bad_by_reason[reason] += 1
        if len(self.bad_rows) < MAX_BAD_ROWS_SHOWN:
            self.bad_rows.append(f"{path}:{line}: {reason}" + (f" ({detail})" if detail else ""))

    def note(self, message: str) -> None:
        log.warning("%s", message)
        self.notes.append(message)

    def as_dict(self, **totals: int) -> dict:
        return {
            **totals,
            "bad": sum(self.bad_by_reason.values()),
            "bad_by_reason": dict(self.bad_by_reason),
            "bad_rows": list(self.bad_rows),
            "files": self.files,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------
# public readers


def read_pairs(
    paths: PathLike | Iterable[PathLike],
    input_column: str | Sequence[str] | None = None,
    output_column: str | None = None,
    style: str | None = None,
) -> tuple[list[Pair], dict]:
    """Read product -> copy pairs from AdvertiseGen, KOBE, CSV/Excel or JSON Lines files.

    ``input_column``/``output_column`` name the columns of merchant tables (CSV, Excel, JSON Lines
    other than AdvertiseGen); ``style`` is the style of those (default "ad"); AdvertiseGen is
    always "ad" and KOBE always "description". Returns the pairs and a report::

        {"rows": n, "pairs": n, "bad": n, "bad_by_reason": {reason: n}, "bad_rows": [...],
         "unk_removed": n, "unk_rows": n, "files": [{path, format, encoding, rows, pairs, bad}],
         "notes": [...]}
    """
    table_style = style or "ad"
    if table_style not in STYLE_CODES:
        raise DataError(f"style must be one of {', '.join(STYLE_CODES)}, not {style!r}")
    inputs = _split_columns(input_column)
    report = _Report()
    pairs: list[Pair] = []
    for path in _expand_pair_paths(_as_paths(paths)):
        bad_before = sum(report.bad_by_reason.values())
        name = path.name.lower()
        if name.endswith(KOBE_SRC_SUFFIX):
            fmt, encoding, rows, found = "kobe", *_read_kobe(path, report)
        elif path.suffix.lower() in JSONL_SUFFIXES:
            fmt, encoding, rows, found = _read_jsonl(path, inputs, output_column, table_style, report)
        elif path.suffix.lower() in TABLE_SUFFIXES:
            fmt, encoding, rows, found = "table", *_read_table(
                path, inputs, output_column, table_style, report
            )
        elif path.suffix.lower() == ".txt":
            raise DataError(f"{path}: plain text has no product -> copy pairs; read it with read_texts")
        else:
            raise DataError(
                f"{path}: unknown data format (expected .json/.jsonl, .csv/.tsv/.xlsx or *{KOBE_SRC_SUFFIX})"
            )
        bad = sum(report.bad_by_reason.values()) - bad_before
        report.files.append(
            {"path": str(path), "format": fmt, "encoding": encoding, "rows": rows, "pairs": len(found),
             "bad": bad}
        )
        log.info("%s: %s, %d rows, %d pairs, %d bad", path, fmt, rows, len(found), bad)
        pairs.extend(found)
    totals = {"rows": sum(f["rows"] for f in report.files), "pairs": len(pairs),
              "unk_removed": report.unk_removed, "unk_rows": report.unk_rows}
    return pairs, report.as_dict(**totals)


def read_texts(paths: PathLike | Iterable[PathLike]) -> tuple[list[str], dict]:
    """Plain marketing text for pre-training: one normalised text per non-empty line of .txt files.

    A directory stands for the .txt files in it. Report: {"rows", "texts", "bad", "bad_by_reason",
    "bad_rows", "files", "notes"}; a line that is empty after normalisation counts as bad "empty"
    (blank lines are skipped silently).
    """
    report = _Report()
    texts: list[str] = []
    for path in _as_paths(paths):
        files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise DataError(f"{path}: directory has no .txt files")
        for file in files:
            if file.suffix.lower() != ".txt":
                raise DataError(f"{file}: read_texts reads plain .txt files; read pairs with read_pairs")
            text, encoding = _decode_file(file, report)
            rows = kept = 0
            for line_no, line in _lines(text):
                if not line.strip():
                    continue
                rows += 1
                clean = normalise(line)
                if not clean:
                    report.bad(file, line_no, "empty")
                    continue
                texts.append(clean)
                kept += 1
            report.files.append({"path": str(file), "format": "text", "encoding": encoding,
                                 "rows": rows, "texts": kept, "bad": rows - kept})
    return texts, report.as_dict(rows=sum(f["rows"] for f in report.files), texts=len(texts))


def parse_content(content: str) -> dict[str, list[str]]:
    """AdvertiseGen's ``类型#裤*图案#复古*图案#线条`` as ``{"类型": ["裤"], "图案": ["复古", "线条"]}``.

    Keys and values are normalised; raises ValueError(reason) on a pair without exactly one '#'
    or with an empty key or value.
    """
    attributes: dict[str, list[str]] = {}
    for n, item in enumerate(content.split("*"), start=1):
        if not item.strip():
            continue  # a stray '*' (e.g. at the end) carries nothing
        if item.count("#") != 1:
            raise ValueError(f"attribute {n} {item!r} is not key#value")
        key, value = (normalise(part) for part in item.split("#"))
        if not key or not value:
            raise ValueError(f"attribute {n} {item!r} has an empty key or value")
        attributes.setdefault(key, []).append(value)
    if not attributes:
        raise ValueError("no attributes")
    return attributes


# ---------------------------------------------------------------------------------------------
# files and encodings


def _as_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    result = [Path(p) for p in paths]
    if not result:
        raise DataError("no data files given")
    for path in result:
        if not path.exists():
            raise DataError(f"{path}: no such file or directory")
    return result


def _expand_pair_paths(paths: list[Path]) -> list[Path]:
    """Directories become their KOBE source files; a KOBE target file stands for its source."""
    result = []
    for path in paths:
        if path.is_dir():
            sources = sorted(p for p in path.iterdir() if p.name.lower().endswith(KOBE_SRC_SUFFIX))
            if not sources:
                raise DataError(f"{path}: directory has no *{KOBE_SRC_SUFFIX} files (name the files instead)")
            result.extend(sources)
        elif path.name.lower().endswith(KOBE_TGT_SUFFIX):
            result.append(path.with_name(path.name[: -len(KOBE_TGT_SUFFIX)] + KOBE_SRC_SUFFIX))
        else:
            result.append(path)
    return list(dict.fromkeys(result))  # a file named twice (src and tgt) is read once


def _decode_file(path: Path, report: _Report) -> tuple[str, str]:
    """The text of a file: UTF-8 (a BOM is allowed), else GBK, which the report notes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        offset = exc.start
    try:
        text = data.decode("gbk")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: neither UTF-8 (bad byte at offset {offset}) nor GBK") from exc
    report.note(f"{path}: not valid UTF-8 (bad byte at offset {offset}); decoded as GBK")
    return text, "gbk"


def _lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, line) with CRLF handled; split on '\\n' only, so a U+2028 inside a JSON
    string does not break a record in two (str.splitlines would)."""
    for n, line in enumerate(text.split("\n"), start=1):
        yield n, line.removesuffix("\r")


def _split_columns(columns: str | Sequence[str] | None) -> list[str]:
    if columns is None:
        return []
    if isinstance(columns, str):
        columns = columns.split(",")
    names = [c.strip() for c in columns if c.strip()]
    if not names:
        raise DataError("input_column names no column")
    return names


# ---------------------------------------------------------------------------------------------
# formats


def _read_jsonl(
    path: Path, inputs: list[str], output: str | None, style: str, report: _Report
) -> tuple[str, str, int, list[Pair]]:
    """AdvertiseGen (detected by its keys) or merchant JSON Lines with named columns."""
    text, encoding = _decode_file(path, report)
    records: list[tuple[int, object]] = []  # (line, parsed object or _InvalidJson), in line order
    for line_no, line in _lines(text):
        if not line.strip():
            continue
        try:
            records.append((line_no, json.loads(line)))
        except json.JSONDecodeError as exc:
            records.append((line_no, _InvalidJson(exc.msg)))
    if not records:
        raise DataError(f"{path}: no rows")
    if all(isinstance(obj, _InvalidJson) for _, obj in records):
        line_no, obj = records[0]
        raise DataError(f"{path}: not JSON Lines: no line is valid JSON (line {line_no}: {obj.message})")
    rows = len(records)

    first = next((obj for _, obj in records if isinstance(obj, dict)), {})
    named = [*inputs, output] if inputs and output else []
    if named and all(column in first for column in named):
        return "jsonl", encoding, rows, _table_pairs(path, records, inputs, output, style, report)
    if "content" in first and "summary" in first:
        return "advertisegen", encoding, rows, _advertisegen_pairs(path, records, report)
    if not named:
        raise DataError(
            f"{path}: JSON Lines without AdvertiseGen's 'content'/'summary' keys; "
            "name the input_column and output_column"
        )
    for column in named:
        if not any(isinstance(obj, dict) and column in obj for _, obj in records):
            raise DataError(
                f"{path}: no row has column '{column}' (keys of the first row: {', '.join(first)})"
            )
    return "jsonl", encoding, rows, _table_pairs(path, records, inputs, output, style, report)


def _advertisegen_pairs(path: Path, records: list[tuple[int, object]], report: _Report) -> list[Pair]:
    pairs = []
    for line_no, obj in records:
        if isinstance(obj, _InvalidJson):
            report.bad(path, line_no, "invalid_json", obj.message)
            continue
        if not isinstance(obj, dict):
            report.bad(path, line_no, "wrong_type", f"a row is a JSON object, not {type(obj).__name__}")
            continue
        missing = [key for key in ("content", "summary") if key not in obj]
        if missing:
            report.bad(path, line_no, "missing_key", f"key '{missing[0]}'")
            continue
        content, summary = obj["content"], obj["summary"]
        wrong = "content" if not isinstance(content, str) else "summary" if not isinstance(summary, str) else ""
        if wrong:
            kind = type(obj[wrong]).__name__
            report.bad(path, line_no, "wrong_type", f"key '{wrong}' is {kind}, not a string")
            continue
        if not content.strip() or not summary.strip():
            report.bad(path, line_no, "empty", "key 'content'" if not content.strip() else "key 'summary'")
            continue
        try:
            source = attributes_text(parse_content(content))
        except ValueError as exc:
            report.bad(path, line_no, "bad_attributes", f"key 'content': {exc}")
            continue
        if BRAND_PLACEHOLDER in summary:
            report.bad(path, line_no, "brand_placeholder", "summary names 'BRAND' instead of a brand")
            continue
        unk = summary.count(UNK_LITERAL)
        copy = normalise(summary.replace(UNK_LITERAL, ""))
        torn = torn_clauses(summary) if unk else ()
        if not copy:
            report.bad(path, line_no, "empty", "key 'summary'")
            continue
        report.unk_removed += unk
        report.unk_rows += unk > 0
        pairs.append(Pair(source, copy, "ad", f"{path}:{line_no}", torn))
    return pairs


def torn_clauses(summary: str) -> tuple[str, ...]:
    """The clauses of an AdvertiseGen summary that hold <UNK>, as the pair's copy has them (without it)."""
    marked = normalise(summary.replace(UNK_LITERAL, _LOST))
    return tuple(dict.fromkeys(c.replace(_LOST, "") for c in clauses(marked) if _LOST in c))


def _table_pairs(
    path: Path,
    records: Iterable[tuple[int, object]],
    inputs: list[str],
    output: str | None,
    style: str,
    report: _Report,
) -> list[Pair]:
    """Pairs from rows (dicts) of a merchant table; JSON Lines and spreadsheets share this."""
    pairs = []
    for line_no, row in records:
        if isinstance(row, _InvalidJson):
            report.bad(path, line_no, "invalid_json", row.message)
            continue
        if not isinstance(row, dict):
            report.bad(path, line_no, "wrong_type", f"a row is a JSON object, not {type(row).__name__}")
            continue
        missing = next((c for c in [*inputs, output] if c not in row), None)
        if missing is not None:
            report.bad(path, line_no, "missing_key", f"column '{missing}'")
            continue
        wrong = next((c for c in [*inputs, output] if not isinstance(row[c], (str, int, float))
                      or isinstance(row[c], bool)), None)
        if wrong is not None:
            report.bad(path, line_no, "wrong_type", f"column '{wrong}' is {type(row[wrong]).__name__}")
            continue
        parts = [normalise(str(row[c])) for c in inputs]
        source = SOURCE_JOINER.join(p for p in parts if p)
        copy = normalise(str(row[output]))
        if not source or not copy:
            report.bad(path, line_no, "empty", f"column '{output if source else ', '.join(inputs)}'")
            continue
        pairs.append(Pair(source, copy, style, f"{path}:{line_no}"))
    return pairs


def _read_table(
    path: Path, inputs: list[str], output: str | None, style: str, report: _Report
) -> tuple[str, int, list[Pair]]:
    """CSV/TSV/Excel with named columns; line = the row number a spreadsheet shows (header = 1)."""
    import pandas as pd  # heavy; only when a table is read

    if not inputs or not output:
        raise DataError(f"{path}: a table needs input_column and output_column named")
    encoding = "binary"
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            text, encoding = _decode_file(path, report)
            frame = pd.read_csv(io.StringIO(text), sep="\t" if path.suffix.lower() == ".tsv" else ",",
                                dtype=str, keep_default_na=False)
        else:
            frame = pd.read_excel(path, dtype=str, keep_default_na=False)
    except DataError:
        raise
    except Exception as exc:  # pandas raises many kinds (ParserError, BadZipFile, ValueError...)
        raise DataError(f"{path}: cannot read as a table ({type(exc).__name__}: {exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in [*inputs, output]:
        if column not in frame.columns:
            raise DataError(
                f"{path}: no column '{column}' (columns: {', '.join(map(str, frame.columns))})"
            )
    records = ((i + 2, row) for i, row in enumerate(frame[[*dict.fromkeys([*inputs, output])]]
                                                     .to_dict("records")))
    pairs = _table_pairs(path, records, inputs, output, style, report)
    return encoding, len(frame), pairs


def _read_kobe(src: Path, report: _Report) -> tuple[str, int, list[Pair]]:
    """KOBE: line i of x.src.str (``<aspect> <user> t i t l e``) pairs with line i of x.tgt.str."""
    tgt = src.with_name(src.name[: -len(KOBE_SRC_SUFFIX)] + KOBE_TGT_SUFFIX)
    if not src.exists():
        raise DataError(f"{src}: no such file (the source half of {tgt})")
    if not tgt.exists():
        raise DataError(f"{tgt}: no such file (the target half of {src})")
    src_text, encoding = _decode_file(src, report)
    tgt_text, _ = _decode_file(tgt, report)
    src_lines = src_text.split("\n")
    tgt_lines = tgt_text.split("\n")
    # a final newline leaves one empty string at the end; it is not a row
    for lines in (src_lines, tgt_lines):
        if lines and lines[-1].strip() == "":
            lines.pop()
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"{src}: {len(src_lines)} lines but {tgt} has {len(tgt_lines)}; line i of one must pair "
            "with line i of the other"
        )
    pairs = []
    for line_no, (src_line, tgt_line) in enumerate(zip(src_lines, tgt_lines, strict=True), start=1):
        tokens = src_line.split()
        if len(tokens) < 2 or not all(t.startswith("<") and t.endswith(">") for t in tokens[:2]):
            report.bad(src, line_no, "missing_tags", "expected '<aspect> <user-category> title...'")
            continue
        title = normalise("".join(tokens[2:]))
        description = normalise("".join(tgt_line.split()))
        if not title or not description:
            report.bad(src if not title else tgt, line_no, "empty", "title" if not title else "description")
            continue
        pairs.append(Pair(title, description, "description", f"{src}:{line_no}"))
    return encoding, len(src_lines), pairs
