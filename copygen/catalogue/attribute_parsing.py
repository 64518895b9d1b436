"""Product attributes: AdvertiseGen text or a JSON object, parsed into ``dict[str, list[str]]``.

Attributes are ``dict[str, list[str]]`` in insertion order, written in files either as
AdvertiseGen's ``类型#上衣*颜色#白色*颜色#黑色`` (a key may repeat) or as a JSON object
``{"类型": "上衣", "颜色": ["白色", "黑色"]}``.

In AdvertiseGen text, an empty segment (a trailing or doubled ``*``) is ignored; a segment
without ``#``, with an empty key or value, or with a second ``#`` is an error naming the pair.
Keys and values may not contain ``#`` or ``*``, which separate attribute pairs in the prompt, nor
the prompt's control codes ([SEP], [EOS], ...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from copygen.catalogue.value_checks import JsonObject, clip, control_code, wrong_type
from copygen.textnorm import normalise

_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_STRIP_INVISIBLE = dict.fromkeys(map(ord, _INVISIBLE), None)
ATTRIBUTE_SEPARATORS = ("#", "*")  # separate attribute pairs in the prompt; also refused in a category


def _add_attribute(result: dict[str, list[str]], key: str, value: str, where: str, *, clean: bool = False) -> None:
    """Append key#value to result, normalising both unless clean (cut from normalised text)."""
    key, value = (key.strip(), value.strip()) if clean else (normalise(key), normalise(value))
    if not key:
        raise ValueError(f"{where} has an empty key")
    if not value:
        raise ValueError(f"{where} has an empty value")
    for part, text in (("key", key), ("value", value)):
        for sep in ATTRIBUTE_SEPARATORS:
            if sep in text:
                raise ValueError(
                    f"{where}: {part} {clip(text)!r} contains {sep!r}, which separates attributes "
                    "in the prompt (write 120×80cm rather than 120*80cm)"
                )
        code = control_code(text)
        if code:
            raise ValueError(f"{where}: {part} {clip(text)!r} contains the prompt control code {code}")
    result.setdefault(key, []).append(value)


def _attributes_from_pairs(text: str) -> dict[str, list[str]]:
    """Attributes from normalised AdvertiseGen text."""
    result: dict[str, list[str]] = {}
    for number, pair in enumerate(text.split("*"), 1):
        pair = pair.strip()
        if not pair:  # a trailing or doubled '*' separates nothing
            continue
        where = f"pair {number} {clip(pair)!r}"
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
            raise wrong_type(f"key {clip(repr(key))} must be text", key)
        where = f"key {clip(key)!r}"
        values = list(raw) if isinstance(raw, (list, tuple)) and not isinstance(raw, JsonObject) else [raw]
        if not values:
            raise ValueError(f"{where} has an empty list of values")
        for value in values:
            if not isinstance(value, str):
                raise wrong_type(f"{where}: a value must be text or a list of text", value)
            _add_attribute(result, key, value, where)
    return result


def _attributes_from_json(text: str) -> dict[str, list[str]]:
    try:
        data = json.loads(text, object_pairs_hook=JsonObject)
    except json.JSONDecodeError as exc:
        raise ValueError(f"looks like JSON but is not valid JSON ({exc.msg} at character {exc.pos + 1})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(data, JsonObject):
        raise wrong_type("expected a JSON object of key: value or key: [values]", data)
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
    raise wrong_type("expected text like 类型#上衣*颜色#白色 or a JSON object", value)
