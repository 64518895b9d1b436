"""The score weights file: selection weights fitted to reviewers' decisions by `copygen tune-score`,
loaded by workers from COPYGEN_SCORE_WEIGHTS.

    {"format": "copygen.score_weights", "version": 1, "name": "score-20261201T183000Z",
     "weights": {"coverage": 0.45, "fluency": 0.18, "agreement": 0.08, "length": 0.1, "distinct": 0.05, "varied": 0.14},
     "fitted": {...how, on what, and the held-out comparison with the default weights...}}

Weights are 0 or more and sum to at most 1: the score's flag penalty (1.5 per flag) must stay above
everything the positive terms can add, so a flagged candidate still scores below every passing one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FORMAT = "copygen.score_weights"
VERSION = 1
MAX_TOTAL = 1.0  # see the module docstring


def read_weights(path: str | os.PathLike, names: Sequence[str], *, added_later: Sequence[str] = ()) -> dict[str, float]:
    """The weights of a file, one per name; ValueError naming the file and what is wrong.
    added_later: names a file fitted before their term existed may lack; they read as 0, so the
    worker chooses as the file was fitted to."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"score weights {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ValueError(f"score weights {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"score weights {path}: not a {FORMAT} file (write one with `copygen tune-score`)")
    if data.get("version") != VERSION:
        raise ValueError(f"score weights {path}: version {data.get('version')!r}, this copygen reads {VERSION}")
    weights = data.get("weights")
    if isinstance(weights, dict) and set(names) - set(weights) <= set(added_later):
        weights = {**dict.fromkeys(set(names) - set(weights), 0.0), **weights}
    if not isinstance(weights, dict) or set(weights) != set(names):
        raise ValueError(f"score weights {path}: 'weights' must give exactly {', '.join(names)}")
    for name in names:
        value = weights[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"score weights {path}: weights.{name} must be a number, 0 or more, not {value!r}")
    if sum(weights.values()) > MAX_TOTAL + 1e-9:
        raise ValueError(f"score weights {path}: weights sum to {sum(weights.values()):.4f}, more than {MAX_TOTAL}: "
                         "a flagged candidate could then outscore a passing one")
    return {name: float(weights[name]) for name in names}


def write_weights(path: str | os.PathLike, name: str, weights: Mapping[str, float], fitted: Mapping[str, Any]) -> Path:
    """Write a weights file atomically (a worker may read it at any moment)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, "version": VERSION, "name": name,
            # 4 decimals, rounded down: the rounded weights never sum past MAX_TOTAL
            "weights": {k: math.floor(float(v) * 1e4) / 1e4 for k, v in weights.items()}, "fitted": dict(fitted)}
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(body, fh, ensure_ascii=False, indent=2, default=str)
        fh.write("\n")
    os.replace(tmp, out)
    return out
