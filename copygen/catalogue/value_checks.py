"""How the catalogue modules describe and screen raw input values in their error messages.

Shared by attribute parsing, row validation, job settings and the payload check, so that a wrong
type or a prompt control code is reported in the same words wherever it turns up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from copygen.prompt import SPECIAL_TOKENS


class JsonObject(list):
    """A JSON object as its (key, value) pairs, so a repeated key keeps all its values."""


def kind_of(value: Any) -> str:
    """How a JSON-minded user would name the type of value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({clip(repr(value))})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (Mapping, JsonObject)):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def wrong_type(expected: str, value: Any) -> ValueError:
    """A ValueError, not a TypeError: a wrong type in the data is bad data, reported like any other."""
    return ValueError(f"{expected}, got {kind_of(value)}")


def clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def control_code(text: str) -> str | None:
    """The first prompt control code ([SEP], [EOS], ...) in text, if any."""
    if "[" not in text:
        return None
    return next((token for token in SPECIAL_TOKENS if token in text), None)
