"""One chunk, start to finish: claim, generate candidates, check and choose, store.

run_chunk is a plain function (no Celery): the chunk task, the embedded in-process mode and the
tests all call it. Its steps, each in its own short transaction:

1. read the job: a job that asks for a model version this worker does not serve is handed
   back untouched (no attempt counted, outcome "mismatch"); then claim the chunk in SQL (counts
   an attempt, takes a lease); None -> nothing to do (done, parked, or leased by another
   worker: a duplicate delivery);
2. generate k x oversample candidates for each of the chunk's products in one engine call
   (continuously batched), blocking at decode time the Advertising Law terms (in every spelling
   a model writes: NO.1, No.1, no.1) and, per product, the words naming values its own
   attributes exclude (a 亚麻 短裤 is never called 牛仔裤 or 长裤);
3. check and score every candidate and keep the k best (worker.selection): passing before
   flagged, never two near-duplicates while a distinct candidate is left; only products with
   fewer than k passing get more candidates, at most settings.regenerate_rounds more calls;
4. write all the chunk's variants and mark the chunk done in ONE transaction (ON CONFLICT DO
   NOTHING: a second delivery stores nothing twice), then settle the job if it is complete.

A failure in steps 2-3 is recorded against the chunk (record_chunk_error), which parks it as
failed after settings.max_attempts attempts. A database outage in step 4 is waited out with
backoff for a while, keeping the generated copy; if it lasts longer, the exception goes to the
caller (worker.dispatch retries it) and the copy is kept in the process's Runtime for the retry.

Sampling is deterministic per (job seed, chunk, round): the seed of a generate call is derived
from the job's seed (or, without one, from its id), the chunk number and the regeneration round,
so a chunk run again on the same model and device writes the same copy.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from copygen.attributes import excluded_words, wanted_phrases
from copygen.catalogue import (
    DEFAULT_LENGTH,
    DEFAULT_TEMPERATURE,
    DEFAULT_VARIANTS,
    JobSettings,
    Product,
    parse_attributes,
)
from copygen.compliance import Lexicon, banned_phrases_for_decoding, load_lexicon
from copygen.settings import Settings
from db.chunks import claim_chunk, mark_chunk_done, record_chunk_error
from db.engine import session_scope
from db.jobs import finish_job, get_job
from db.variants import upsert_variants
from trainer.generation import NO_REPEAT_NGRAM, Generator, Request
from worker import filters, selection
from worker.runtime import Runtime

log = logging.getLogger(__name__)

PRODUCT_FIELDS = ("external_id", "title", "category", "attributes", "description")
STORE_BACKOFF_S = (1, 2, 4, 8, 15, 30)  # waits between tries of the final write when the database is away


@dataclass
class ChunkOutcome:
    """What run_chunk did. status: done, skipped (nothing to do), mismatch (the job wants another
    model; nothing claimed), retry (error recorded, the chunk is pending again) or parked (error
    recorded, attempts used up). retry_in: seconds after which the caller should run it again."""

    status: str
    variants: int = 0  # rows this call wrote (0 for a duplicate delivery)
    flagged: int = 0  # of the chunk's variants, those stored with flags
    error: str | None = None
    retry_in: float | None = None


@dataclass
class VariantDraft:
    variant_no: int  # 1..k, the variant slot
    text: str
    flags: list[str] = field(default_factory=list)
    regenerations: int = 0  # extra engine calls the product needed for k passing variants
    score: float = 0.0
    rank: int = 0

    @property
    def passed(self) -> bool:
        return not self.flags


def is_disconnect(exc: BaseException) -> bool:
    """True for a database that is away (connection refused or lost, locked): worth retrying later."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and bool(getattr(exc, "connection_invalidated", False))
    )


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from parts, the same in every process (unlike hash())."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def job_settings(stored: dict[str, Any]) -> JobSettings:
    """The JobSettings a job was submitted with (keys this copygen does not know are ignored)."""
    known = {f.name for f in fields(JobSettings)}
    return JobSettings(**{k: v for k, v in stored.items() if k in known})


def product_of(item: dict[str, Any]) -> Product:
    return Product.from_json({k: item[k] for k in PRODUCT_FIELDS if k in item})


# -- generation and filtering: no SQL, no Celery -----------------------------------------------


def draft_variants(
    generator: Generator,
    products: Sequence[Product],
    settings: JobSettings,
    lexicon: Lexicon,
    *,
    seed: int,
    rounds: int,
    oversample: int,
    nudge: tuple[float, float] = (0.0, 0.0),
) -> list[list[VariantDraft]]:
    """settings.variants checked, scored and ranked variants for each product, in product order.

    One engine call asks for k x oversample candidates of every product, each product's excluded
    words blocked while decoding and, with a nudge, its own values' words favoured (nudging.py);
    selection keeps the k best. Only products with fewer than k
    passing variants get more candidates, up to `rounds` more calls.
    """
    k = settings.variants
    m = k * max(1, oversample)
    edges = generator.length_edges  # the model's length buckets: what "short" means to it
    sample = {"temperature": settings.temperature, "top_p": settings.top_p,
              "banned": banned_phrases_for_decoding(lexicon), "no_repeat_ngram": NO_REPEAT_NGRAM, "nudge": nudge,
              "clause_floor": settings.clause_floor, "word_pairs": settings.word_pairs,
              "known_clauses": settings.known_clauses}
    requests = candidate_requests(products, settings, m, nudge)
    word_pairs = generator.word_pairs if settings.word_pairs else None  # None too for a checkpoint without them
    pools: list[list[selection.Candidate]] = [[] for _ in products]
    kept: list[list[selection.Candidate]] = [[] for _ in products]
    extra_rounds = [0] * len(products)
    todo = list(range(len(products)))
    for round_no in range(rounds + 1):
        if round_no:
            todo = [i for i in todo if sum(c.passed for c in kept[i]) < k]
            if not todo:
                break
        fresh = generator.generate_candidates([requests[i] for i in todo], seed=derive_seed(seed, round_no), **sample)
        for i, candidates in zip(todo, fresh):
            pools[i] += selection.assess([c.text for c in candidates], [c.logprob for c in candidates], products[i],
                                         lexicon, length=settings.length, edges=edges, stated_only=settings.stated_only,
                                         word_pairs=word_pairs)
            kept[i] = selection.choose(pools[i], k)
            extra_rounds[i] = round_no
    return [[VariantDraft(rank, c.text, c.flags, extra_rounds[i], c.score, rank)
             for rank, c in enumerate(row, start=1)] for i, row in enumerate(kept)]




def candidate_requests(products: Sequence[Product], settings: JobSettings, m: int,
                       nudge: tuple[float, float]) -> list[Request]:
    """The engine's request for m candidates of each product: its excluded words banned (and, for a
    stated_only job, the words of the families it does not state) and, with a nudge, its own values'
    words wanted."""
    requests = []
    for p in products:
        banned = excluded_words(p.attributes)
        if settings.stated_only:
            banned = list(dict.fromkeys(banned + list(filters.unstated_for(p))))
        wanted = wanted_phrases(p.attributes, excluded=banned) if any(nudge) else ()
        requests.append(Request(source=p.source(), variants=m, length=settings.length, style=settings.style,
                                opening=settings.opening, banned=tuple(banned), wanted=tuple(wanted)))
    return requests


def worker_choice(generator: Generator, rows: Sequence[tuple[str, str]], seed: int, *,
                  oversample: int = Settings.model_fields["oversample"].default,
                  rounds: int = Settings.model_fields["regenerate_rounds"].default,
                  nudge: tuple[float, float] = (Settings.model_fields["nudge_start"].default,
                                                Settings.model_fields["nudge_follow"].default),
                  temperature: float = DEFAULT_TEMPERATURE, stated_only: bool = False,
                  clause_floor: float | None = None, word_pairs: bool = False, known_clauses: bool = False,
                  length: str = DEFAULT_LENGTH, lexicon: Lexicon | None = None) -> list[tuple[str, bool]]:
    """(rank-1 text, passed) for each (source, style) row, chosen exactly as a default job chooses
    (or one sampling at `temperature`, one with stated_only, one asking for short copy...).

    For `copygen eval`: a source that parses as attributes becomes a product with those
    attributes (the worker's prompt is made from them), any other source a product with that
    title.
    """
    lexicon = lexicon or load_lexicon()
    products = [eval_product(n, source) for n, (source, _) in enumerate(rows)]
    chosen: list[tuple[str, bool]] = [("", False)] * len(rows)
    for style in dict.fromkeys(style for _, style in rows):
        picked = [i for i, (_, s) in enumerate(rows) if s == style]
        job = JobSettings(DEFAULT_VARIANTS, length=length, style=style, temperature=temperature,
                          stated_only=stated_only, clause_floor=clause_floor, word_pairs=word_pairs,
                          known_clauses=known_clauses)
        drafts = draft_variants(generator, [products[i] for i in picked], job,
                                lexicon, seed=derive_seed(seed, style), rounds=rounds, oversample=oversample,
                                nudge=nudge)
        for i, row in zip(picked, drafts):
            chosen[i] = (row[0].text, row[0].passed)
    return chosen


def eval_product(n: int, source: str) -> Product:
    try:
        return Product(external_id=str(n), attributes=parse_attributes(source))
    except ValueError:
        return Product(external_id=str(n), title=source)


# -- one chunk, with SQL ------------------------------------------------------------------------


def run_chunk(rt: Runtime, generator: Generator, job_id: str, chunk_no: int, settings: Settings) -> ChunkOutcome:
    """Generate, check and store one chunk's variants; see the module docstring."""
    engine = rt.engine(settings)
    rows = rt.unsaved.get(job_id, chunk_no)
    if rows is not None:  # generated before a database outage: store it, do not generate it again
        written = store_chunk(rt, engine, job_id, chunk_no, rows, settings)
        log.info("job %s chunk %d: stored the %d variants generated before the database outage", job_id,
                 chunk_no, len(rows))
        return ChunkOutcome("done", written, sum(not r["passed"] for r in rows))

    with session_scope(engine) as s:
        job = get_job(s, job_id)
        wanted = job["model_version"] if job else None
        if wanted and wanted != generator.model_version:  # checked before the claim: costs no attempt
            log.info("job %s chunk %d: wants model %r, this worker serves %r; handed back", job_id, chunk_no,
                     wanted, generator.model_version)
            return ChunkOutcome("mismatch", error=f"job {job_id} asks for model {wanted!r}; this worker serves "
                                                  f"{generator.model_version!r}")
        items = claim_chunk(s, job_id, chunk_no, lease_seconds=settings.lease_seconds,
                            max_attempts=settings.max_attempts) if job else None
    if items is None:
        log.info("job %s chunk %d: nothing to do (done, parked or claimed elsewhere)", job_id, chunk_no)
        return ChunkOutcome("skipped")

    started = time.monotonic()
    try:
        js = job_settings(job["settings"])
        base_seed = js.seed if js.seed is not None else derive_seed(job_id)
        drafts = draft_variants(generator, [product_of(item) for item in items], js, rt.lexicon(),
                                seed=derive_seed(base_seed, chunk_no), rounds=settings.regenerate_rounds,
                                oversample=js.oversample or settings.oversample,
                                nudge=(settings.nudge_start, settings.nudge_follow))
    except Exception as exc:
        if isinstance(exc, DBAPIError) and is_disconnect(exc):
            raise
        return record_failure(engine, job_id, chunk_no, exc, settings)

    rows = [
        {
            "job_item_id": item["id"], "variant_no": d.variant_no, "text": d.text, "rank": d.rank,
            "score": d.score, "flags": d.flags, "passed": d.passed,
            "model_version": generator.model_version, "regenerations": d.regenerations,
        }
        for item, row in zip(items, drafts) for d in row
    ]
    rt.unsaved.keep(job_id, chunk_no, rows)
    try:
        written = store_chunk(rt, engine, job_id, chunk_no, rows, settings)
    except DBAPIError as exc:
        if is_disconnect(exc):  # waited out by the caller, the copy kept for the retry
            raise
        rt.unsaved.forget(job_id, chunk_no)  # a write the database refuses: generate again next attempt
        return record_failure(engine, job_id, chunk_no, exc, settings)
    flagged = sum(not r["passed"] for r in rows)
    log.info("job %s chunk %d: %d products, %d variants (%d flagged) in %.1f s", job_id, chunk_no,
             len(items), len(rows), flagged, time.monotonic() - started)
    return ChunkOutcome("done", written, flagged)


def record_failure(engine: Engine, job_id: str, chunk_no: int, exc: BaseException, settings: Settings) -> ChunkOutcome:
    """Record a failed attempt against the chunk: pending again ("retry") or parked once attempts run out."""
    error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    with session_scope(engine) as s:
        parked = record_chunk_error(s, job_id, chunk_no, error, max_attempts=settings.max_attempts)
        if parked:
            finish_job(s, job_id)
    log.warning("job %s chunk %d: %s (%s)", job_id, chunk_no, "parked" if parked else "will retry",
                f"{type(exc).__name__}: {exc}")
    return ChunkOutcome("parked" if parked else "retry", error=f"{type(exc).__name__}: {exc}")


def fail_unclaimed(engine: Engine, job_id: str, chunk_no: int, exc: BaseException, settings: Settings) -> ChunkOutcome:
    """Count a failure that happened before the chunk was claimed (its model would not load, no worker
    serves its model): claim it, so the attempt counts, and record the error; nothing if it is
    done, parked or claimed elsewhere."""
    with session_scope(engine) as s:
        items = claim_chunk(s, job_id, chunk_no, lease_seconds=settings.lease_seconds,
                            max_attempts=settings.max_attempts)
    if items is None:
        return ChunkOutcome("skipped")
    return record_failure(engine, job_id, chunk_no, exc, settings)


def store_chunk(rt: Runtime, engine: Engine, job_id: str, chunk_no: int, rows: list[dict[str, Any]],
                settings: Settings) -> int:
    """Write a chunk's variants and mark it done in one transaction; wait out a short outage.

    Returns the number of rows written (0 when another delivery stored them first). Raises the
    database error when the outage outlasts the backoff (the chunk's copy stays in rt.unsaved).
    """
    deadline = time.monotonic() + min(settings.lease_seconds / 2, sum(STORE_BACKOFF_S))
    for delay in (*STORE_BACKOFF_S, None):
        try:
            with session_scope(engine) as s:
                written = upsert_variants(s, rows)
                mark_chunk_done(s, job_id, chunk_no)
            break
        except DBAPIError as exc:
            if not is_disconnect(exc) or delay is None or time.monotonic() + delay > deadline:
                raise
            log.warning("job %s chunk %d: database unavailable (%s); retrying in %d s", job_id, chunk_no,
                        type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__, delay)
            time.sleep(delay)
    rt.unsaved.forget(job_id, chunk_no)
    try:
        with session_scope(engine) as s:
            finish_job(s, job_id)
    except DBAPIError as exc:  # the reconciler settles the job later
        log.warning("job %s: could not settle the job now (%s)", job_id, exc)
    return written
