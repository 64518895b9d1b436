"""Recording reviewers' decisions on variants: one function for a backend that imports copygen, the
copygen.record_review task and `copygen review import`.

    from worker.review import record_reviews
    outcome = record_reviews([
        {"job_id": job_id, "external_id": "SKU-1", "variant_no": 2, "decision": "approved"},
        {"job_id": job_id, "external_id": "SKU-1", "variant_no": 3, "decision": "edited",
         "edited_text": "纯棉白色衬衫，简约百搭。"},
        {"job_id": job_id, "external_id": "SKU-2", "variant_no": 1, "decision": "rejected", "reason": "tone"},
    ], reviewer="li.na", idempotency_key="review-2026-12-01-li.na")

Every decision is checked on its own: its shape (db.reviews.decision_problems), that its variant
is stored, and that an edit neither breaks the Advertising Law nor names a value the product's
attributes exclude (the worker's own checks, worker.filters). A refused decision is reported with
its position and field; the others are recorded all the same, in one transaction. Nothing is
overwritten: decisions are appended and the latest counts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from types import SimpleNamespace
from typing import Any

from copygen.settings import Settings, get_settings
from copygen.textnorm import normalise
from db.engine import session_scope
from db.reviews import MAX_KEY_CHARS, decision_problems, find_variants, record_decisions
from worker import filters, runtime

log = logging.getLogger(__name__)

SCHEMA_FILE = "record_review.schema.json"  # in the copygen package's schemas/ folder
FIELDS = ("job_id", "external_id", "variant_no", "decision", "edited_text", "reason", "reviewer")
KEY_FIELDS = FIELDS[:3]  # the variant's stable identity
# Of the worker's flags, those a person's edit must not earn either: the law and the facts. Length
# and repetition are the reviewer's call.
EDIT_FLAG_PREFIXES = ("ad_law:", "contradiction:", "empty")


class ReviewPayloadError(ValueError):
    """A copygen.record_review payload wrong as a whole; the message names every key at fault."""


@dataclass(frozen=True)
class Refusal:
    index: int  # position of the decision in the list given, from 0
    field: str  # the field at fault: one of FIELDS
    reason: str


@dataclass
class ReviewOutcome:
    recorded: int = 0  # decisions appended
    unchanged: int = 0  # valid, but already recorded (same key) or the variant's latest already
    refused: list[Refusal] = field(default_factory=list)


def edit_problems(text: str, attributes: Mapping[str, Sequence[str]], lexicon) -> list[str]:
    """Why an edited text may not be published: Advertising Law terms and values the product's
    attributes exclude, as the worker flags them; [] when it may."""
    flags = filters.check(text, SimpleNamespace(attributes=attributes or {}), lexicon)
    problems = []
    for flag in flags:
        if flag.startswith("ad_law:"):
            problems.append(f"breaks the Advertising Law: {flag.removeprefix('ad_law:')}")
        elif flag.startswith("contradiction:"):
            key, word = flag.removeprefix("contradiction:").split(":", 1)
            problems.append(f"names {word}, which the product's {key} excludes")
        elif flag == "empty":
            problems.append("is empty")
    return problems


def _cleaned(decision: Mapping[str, Any], reviewer: str | None) -> dict[str, Any]:
    d = {k: (v.strip() if isinstance(v, str) else v) for k, v in decision.items()}
    if not d.get("reviewer") and reviewer:
        d["reviewer"] = reviewer.strip()
    if isinstance(d.get("edited_text"), str) and d["edited_text"]:
        d["edited_text"] = normalise(d["edited_text"])  # stored as the worker stores its own copy
    return d


def record_reviews(decisions: Sequence[Mapping[str, Any]], *, reviewer: str | None = None,
                   idempotency_key: str | None = None, source: str = "python",
                   settings: Settings | None = None, keys: Sequence[str | None] | None = None) -> ReviewOutcome:
    """Check and record decisions; see the module docstring.

    Each decision: job_id, external_id, variant_no, decision (approved | edited | rejected),
    edited_text (for edited), reason (wrong_fact | tone | length | compliance | other; optional,
    for rejected or edited), reviewer (default: `reviewer`). With idempotency_key, decision n is
    recorded under "KEY:n", so sending the same list again records nothing; `keys` gives each
    decision its own key instead. `source` says where the decisions came from (kept with them).
    """
    settings = settings or get_settings()
    rt = runtime.current()
    engine = rt.store(settings)
    lexicon = rt.lexicon()
    cleaned = [_cleaned(d, reviewer) if isinstance(d, Mapping) else {"decision": d} for d in decisions]
    if keys is None:
        keys = [f"{idempotency_key}:{n}" if idempotency_key else None for n in range(len(cleaned))]
    outcome = ReviewOutcome()
    named: list[int] = []  # decisions that name a variant well enough to look it up
    valid: set[int] = set()
    for n, d in enumerate(cleaned):
        problems = (decision_problems(d) if isinstance(decisions[n], Mapping)
                    else [("decision", f"expected an object, got {type(decisions[n]).__name__}")])
        outcome.refused += [Refusal(n, name, reason) for name, reason in problems]
        if isinstance(decisions[n], Mapping) and not {name for name, _ in problems} & set(KEY_FIELDS):
            named.append(n)
            if not problems:
                valid.add(n)
    with session_scope(engine) as s:
        found = find_variants(s, [tuple(cleaned[n][k] for k in KEY_FIELDS) for n in named])
        rows = []
        for n in named:
            d = cleaned[n]
            variant = found.get(tuple(d[k] for k in KEY_FIELDS))
            if variant is None:
                outcome.refused.append(Refusal(n, "variant_no", (
                    f"no variant {d['variant_no']} of product {d['external_id']!r} in job {d['job_id']}")))
                continue
            if n not in valid:
                continue
            if d["decision"] == "edited":
                problems = edit_problems(d["edited_text"], variant["attributes"], lexicon)
                if problems:
                    outcome.refused.append(Refusal(n, "edited_text", "the edit " + "; ".join(problems)))
                    continue
            rows.append({**d, "job_item_id": variant["job_item_id"], "source": source,
                         "idempotency_key": keys[n][:MAX_KEY_CHARS] if keys[n] else None})
        done = record_decisions(s, rows)
    outcome.recorded = sum(done)
    outcome.unchanged = len(done) - outcome.recorded
    outcome.refused.sort(key=lambda r: (r.index, FIELDS.index(r.field) if r.field in FIELDS else len(FIELDS)))
    return outcome


def record_review_schema() -> dict[str, Any]:
    """The JSON Schema of the copygen.record_review payload (copygen/schemas/record_review.schema.json)."""
    text = resources.files("copygen").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def record_review_payload(payload: Mapping[str, Any], *, settings: Settings, task_id: str) -> ReviewOutcome:
    """Record a copygen.record_review payload; ReviewPayloadError for one wrong as a whole.

    Without an idempotency_key the task's id stands in, so a redelivered message records nothing
    twice. Refused decisions are logged with their position and field.
    """
    import jsonschema  # only the task path validates against the schema

    validator = jsonschema.Draft202012Validator(record_review_schema())
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    whole = [e for e in errors if len(e.absolute_path) < 2]  # the payload or its top-level keys
    if whole:
        raise ReviewPayloadError("; ".join(
            f"{'.'.join(map(str, e.absolute_path)) or 'payload'}: {e.message}" for e in whole[:10]))
    outcome = record_reviews(payload["decisions"], reviewer=payload.get("reviewer"),
                             idempotency_key=payload.get("idempotency_key") or f"task:{task_id}",
                             source=f"task:{payload.get('source') or 'copygen.record_review'}"[:300],
                             settings=settings)
    for refusal in outcome.refused:
        log.warning("copygen.record_review %s: decisions[%d].%s refused: %s", task_id, refusal.index,
                    refusal.field, refusal.reason)
    log.info("copygen.record_review %s: %d recorded, %d unchanged, %d refused", task_id, outcome.recorded,
             outcome.unchanged, len(outcome.refused))
    return outcome
