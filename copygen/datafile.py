"""Reading the JSON data files copygen ships (the lexicon, the attribute vocabulary) or is given."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path


def read_json(path: str | Path | None, packaged: str) -> tuple[object, str]:
    """(data, source) from `path`, or from copygen/data/<packaged> when path is None.

    A missing, unreadable or malformed file raises ValueError naming the file and the problem.
    """
    if path is None:
        source = f"copygen/data/{packaged}"
        text = (resources.files("copygen") / "data" / packaged).read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ValueError(f"{source}: cannot be read ({reason})") from exc
    try:
        return json.loads(text), source
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
