"""The review workbook: one row per variant, for people who approve, edit or reject copy in Excel.

`copygen export JOB --format xlsx --for-review` writes it; `copygen review import FILE` reads it
back. Each row names its variant by job_id, external_id and variant_no (the variant's stable
identity), shows the product (title, category, attributes, description) and the copy with its
rank, score, passed and flags, and leaves four columns to fill: decision (a drop-down list),
edited_text, reason (a drop-down list) and reviewer. A second sheet explains the choices.

Only openpyxl is used (no pandas): the drop-down lists are data validations, which pandas cannot
write. A row whose four input columns are all empty is not reviewed and is skipped on reading.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHEET = "review"
HELP_SHEET = "how to review"
KEY_COLUMNS = ("job_id", "external_id", "variant_no")
INPUT_COLUMNS = ("decision", "edited_text", "reason", "reviewer")
# (header, width in characters); the order of the sheet
COLUMNS = (
    ("job_id", 12), ("external_id", 16), ("variant_no", 6), ("title", 20), ("category", 8),
    ("attributes", 30), ("description", 20), ("rank", 6), ("score", 8), ("passed", 8), ("flags", 18),
    ("text", 60), ("decision", 12), ("edited_text", 60), ("reason", 12), ("reviewer", 12),
)
HEADERS = tuple(name for name, _ in COLUMNS)
MAX_DATA_ROWS = 1_048_575  # Excel's last row, less the header


class SheetError(ValueError):
    """A workbook that cannot be read as a review sheet; the message names the file (and column)."""


@dataclass(frozen=True)
class SheetRow:
    row: int  # the row number Excel shows (the header is row 1)
    values: dict[str, Any]  # KEY_COLUMNS and INPUT_COLUMNS; None where empty
    letters: Mapping[str, str]  # column name -> its letter in this workbook (A, B, ...)

    def where(self, column: str) -> str:
        """'row 5, column decision (M)': where a person finds a cell."""
        letter = self.letters.get(column)
        return f"row {self.row}, column {column}" + (f" ({letter})" if letter else "")


def _letter(header: str) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(HEADERS.index(header) + 1)


def attributes_line(attributes: Mapping[str, Sequence[str]] | None) -> str:
    """Attributes for a person: 颜色: 白色, 黑色; 材质: 棉."""
    return "; ".join(f"{key}: {', '.join(values)}" for key, values in (attributes or {}).items())


def write_review_sheet(path: str | os.PathLike, job_id: str, variants: Iterable[Mapping[str, Any]], *,
                       decisions: Sequence[str], reasons: Sequence[str]) -> int:
    """Write the workbook for a job's variants (db.reviews.review_rows) atomically; return the rows
    written. decisions and reasons fill the drop-down lists."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append(HEADERS)
    n = 0
    for v in variants:
        sheet.append([job_id, v["external_id"], v["variant_no"], v.get("title") or "", v.get("category") or "",
                      attributes_line(v.get("attributes")), v.get("description") or "", v.get("rank"),
                      round(v["score"], 4) if v.get("score") is not None else None, bool(v.get("passed")),
                      ";".join(v.get("flags") or []), v["text"], None, None, None, None])
        n += 1
    last = max(2, n + 1)
    for (header, width) in COLUMNS:
        sheet.column_dimensions[_letter(header)].width = width
    wrap = Alignment(wrap_text=True, vertical="top")
    for header in ("attributes", "description", "text", "edited_text"):
        for (cell,) in sheet.iter_rows(min_row=2, max_row=n + 1, min_col=HEADERS.index(header) + 1,
                                       max_col=HEADERS.index(header) + 1):
            cell.alignment = wrap
    bold, to_fill = Font(bold=True), PatternFill("solid", fgColor="FFF2CC")  # the columns to fill stand out
    for cell in sheet[1]:
        cell.font = bold
        if cell.value in INPUT_COLUMNS:
            cell.fill = to_fill
    sheet.freeze_panes = "D2"  # the header and the variant's key stay in view
    sheet.auto_filter.ref = f"A1:{_letter(HEADERS[-1])}{last}"
    for header, choices in (("decision", decisions), ("reason", reasons)):
        rule = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True,
                              showErrorMessage=True, errorTitle=header,
                              error=f"{header}: choose one of {', '.join(choices)}")
        rule.add(f"{_letter(header)}2:{_letter(header)}{last}")
        sheet.add_data_validation(rule)
    help_sheet = book.create_sheet(HELP_SHEET)
    for line in (
        ["Fill the yellow columns of the 'review' sheet; leave a row empty to decide nothing about it."],
        ["decision", ("approved: publish the copy as it is; edited: publish edited_text instead; "
                     "rejected: do not publish it")],
        ["edited_text", ("the text to publish, for an 'edited' row only; it must not use an Advertising Law "
                        "term or name a value the product's attributes exclude")],
        ["reason", "optional, for a rejected or edited row: " + ", ".join(reasons)],
        ["reviewer", "who decided (default: the name given to `copygen review import --reviewer`)"],
        ["Keep the columns job_id, external_id and variant_no as they are: they name the variant."],
    ):
        help_sheet.append(line)
    help_sheet.column_dimensions["A"].width = 14
    help_sheet.column_dimensions["B"].width = 100
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        book.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return n


def _value(cell: Any) -> Any:
    if isinstance(cell, str):
        cell = cell.strip()
        return cell or None
    return cell


def _whole_number(value: Any) -> Any:
    """variant_no as Excel gives it back (1, 1.0 or "1") as an int; anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def read_review_sheet(path: str | os.PathLike) -> list[SheetRow]:
    """The reviewed rows of a workbook (rows with something in an input column), in sheet order."""
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    path = Path(path)
    if not path.is_file():
        raise SheetError(f"{path}: no such file")
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001  (openpyxl raises many kinds: InvalidFileException, BadZipFile...)
        raise SheetError(f"{path}: not an Excel workbook ({type(exc).__name__}: {exc})") from None
    try:
        sheet = book[SHEET] if SHEET in book.sheetnames else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        missing = [c for c in (*KEY_COLUMNS, "decision") if c not in header]
        if missing:
            raise SheetError(f"{path}: sheet '{sheet.title}' has no column '{missing[0]}' in its first row "
                             f"(export one with `copygen export JOB --format xlsx --for-review`)")
        where = {name: header.index(name) for name in (*KEY_COLUMNS, *INPUT_COLUMNS) if name in header}
        letters = {name: get_column_letter(i + 1) for name, i in where.items()}
        found = []
        for number, cells in enumerate(rows, start=2):
            values = {name: _value(cells[i]) if i < len(cells) else None for name, i in where.items()}
            if all(values.get(name) is None for name in INPUT_COLUMNS):
                continue  # not reviewed
            values["variant_no"] = _whole_number(values["variant_no"])
            for name in ("job_id", "external_id", "decision", "reason", "reviewer", "edited_text"):
                value = values.get(name)
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                if value is not None and not isinstance(value, str):
                    values[name] = str(value)  # an id Excel took for a number
            if isinstance(values.get("decision"), str):
                values["decision"] = values["decision"].lower()
            found.append(SheetRow(number, values, letters))
        return found
    finally:
        book.close()

