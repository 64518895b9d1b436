"""Job settings: how many copies per product, their length, style and opening, sampling, seed and queue.

:func:`validate_settings` checks a mapping of overrides as a whole: a bad or unknown key raises
SettingsError naming every key at fault. The defaults and limits below are the ones a job gets
when it says nothing; the JSON Schema of the submit payload repeats the limits (a test checks).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from copygen.catalogue.value_checks import clip, control_code, kind_of, wrong_type
from copygen.compliance import load_lexicon
from copygen.prompt import LENGTHS, STYLE_CODES
from copygen.textnorm import normalise

# Defaults of a job that does not set them.
DEFAULT_VARIANTS = 3  # copies per product
DEFAULT_LENGTH = "medium"  # one of prompt.LENGTHS
DEFAULT_STYLE = "ad"  # one of prompt.STYLE_CODES
DEFAULT_TEMPERATURE = 0.95  # sampling temperature
DEFAULT_TOP_P = 0.7  # nucleus sampling: the smallest set of tokens holding this much probability
DEFAULT_QUEUE = "batch"  # one of QUEUES
# Limits.
MAX_OPENING_CHARS = 30
MAX_TEMPERATURE = 2.0  # temperature is in (0, 2]
MAX_TOP_P = 1.0  # top_p is in (0, 1]
MAX_SEED = 2**32 - 1  # numpy's seed range, which transformers.set_seed passes the seed on to
MAX_NAME_CHARS = 200  # model_version, campaign
MAX_OVERSAMPLE = 10  # candidates per variant a job may ask: 10 x 10 variants = 100 candidates a product
MIN_CLAUSE_FLOOR = -20.0  # clause_floor is in [-20, 0): below e^-20 per token every clause passes
QUEUES = ("batch", "interactive")


class SettingsError(ValueError):
    """Job settings or a payload that cannot be accepted; names every field at fault."""

    def __init__(self, problems: list[tuple[str, str]] | str, field_name: str = "settings") -> None:
        """problems: (field, reason) pairs; or one reason about field_name."""
        self.problems = [(field_name, problems)] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in self.problems))

    @property
    def fields(self) -> list[str]:
        return [name for name, _ in self.problems]


@dataclass(frozen=True)
class JobSettings:
    variants: int = DEFAULT_VARIANTS  # copies per product
    length: str = DEFAULT_LENGTH  # one of prompt.LENGTHS
    style: str = DEFAULT_STYLE  # one of prompt.STYLE_CODES
    opening: str = ""  # the phrase every copy starts with, e.g. 新品上市，
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    seed: int | None = None  # None: a fresh seed per chunk
    model_version: str | None = None  # None: the model the worker serves
    queue: str = DEFAULT_QUEUE  # one of QUEUES
    campaign: str | None = None  # a label campaign tools select by
    oversample: int | None = None  # candidates generated per variant kept; None: COPYGEN_OVERSAMPLE
    # Name no colour, fibre, print, length, collar... that the product's attributes do not state
    # (copygen.attributes.unstated_words: blocked while decoding, flagged if written all the same).
    stated_only: bool = False
    # A clause the model itself finds unlikely (mean log-probability per token below this) is
    # written again while decoding (trainer.generation.batching._Clauses); None: never.
    clause_floor: float | None = None
    # A clause two of whose neighbouring words never meet in the model's training copy (a splice
    # such as 线条纹) is written again while decoding (trainer.wordpairs); False: never.
    word_pairs: bool = False
    # Every clause is one of the model's training copy's clauses, the product's excluded and
    # unstated words left out (trainer.clausebook, trainer/generation/known.py); False: any clause.
    known_clauses: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _whole_number(value: Any) -> int:
    """An int, or a float with no fractional part (JSON does not tell 3 from 3.0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type("must be a whole number", value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"must be a whole number, not {value!r}")
        value = int(value)
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type("must be a number", value)
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value!r}")
    return float(value)


def _choice(options: Iterable[str]):
    options = tuple(options)

    def check(value: Any, _max_variants: int) -> str:
        if value not in options or not isinstance(value, str):
            raise ValueError(f"must be one of {', '.join(options)}, not {clip(repr(value))}")
        return value

    return check


def _check_variants(value: Any, max_variants: int) -> int:
    n = _whole_number(value)
    if not 1 <= n <= max_variants:
        raise ValueError(f"must be from 1 to {max_variants} (COPYGEN_MAX_VARIANTS), not {n}")
    return n


def _optional_whole(low: int, high: int):
    """A check of a setting that is None (not set) or a whole number from low to high."""

    def check(value: Any, _max_variants: int) -> int | None:
        if value is None:
            return None
        n = _whole_number(value)
        if not low <= n <= high:
            raise ValueError(f"must be from {low} to {high}, not {n}")
        return n

    return check


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


def _check_opening(value: Any, _max_variants: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise wrong_type("must be text", value)
    text = normalise(value)
    if len(text) > MAX_OPENING_CHARS:
        raise ValueError(f"is {len(text)} characters long; the maximum is {MAX_OPENING_CHARS}")
    code = control_code(text)
    if code:
        raise ValueError(f"contains the prompt control code {code}")
    terms = load_lexicon().find(text)
    if terms:  # every variant starts with the opening, so every one would be flagged ad_law
        raise ValueError(f"names the Advertising Law term{'s' if len(terms) > 1 else ''} {', '.join(terms)}, "
                         "which every variant would then carry")
    return text


def _check_clause_floor(value: Any, _max_variants: int) -> float | None:
    if value is None:
        return None
    floor = _number(value)
    if not MIN_CLAUSE_FLOOR <= floor < 0:
        raise ValueError(f"must be a mean log-probability from {MIN_CLAUSE_FLOOR:g} up to 0, not {floor:g}")
    return floor


def _check_flag(value: Any, _max_variants: int) -> bool:
    if not isinstance(value, bool):
        raise wrong_type("must be true or false", value)
    return value


def _check_name(value: Any, _max_variants: int) -> str | None:
    """model_version, campaign: optional names; "" means not given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type("must be text or null", value)
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
    "seed": _optional_whole(0, MAX_SEED),
    "model_version": _check_name,
    "queue": _choice(QUEUES),
    "campaign": _check_name,
    "oversample": _optional_whole(1, MAX_OVERSAMPLE),
    "stated_only": _check_flag,
    "clause_floor": _check_clause_floor,
    "word_pairs": _check_flag,
    "known_clauses": _check_flag,
}


def validate_settings(d: Mapping[str, Any] | None, max_variants: int) -> JobSettings:
    """JobSettings from a mapping of overrides; SettingsError names every bad or unknown key."""
    if d is None:
        return JobSettings()
    if not isinstance(d, Mapping):
        raise SettingsError([("settings", f"expected an object, got {kind_of(d)}")])
    problems: list[tuple[str, str]] = []
    problems.extend((clip(str(key)), f"unknown setting; known: {', '.join(_SETTING_CHECKS)}")
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
