"""One chunk, start to finish: claim, generate, filter, regenerate, score and rank, store.

run_chunk is a plain function (no Celery): the chunk task, the embedded in-process mode and the
tests all call it. Its steps, each in its own short transaction:

1. read the job: a job that asks for a model version this worker does not serve is handed
   back untouched (no attempt counted, outcome "mismatch"); then claim the chunk in SQL (counts
   an attempt, takes a lease); None -> nothing to do (done, parked, or leased by another
   worker: a duplicate delivery);
2. generate k variants for each of the chunk's products in one call (the Generator sorts by
   prompt length and batches), Advertising Law terms (in every spelling a model writes: NO.1,
   No.1, no.1) blocked at decode time;
3. check every variant (worker.filters); regenerate the failing ones, at most
   settings.regenerate_rounds rounds, keeping a new text only when it has fewer flags;
4. score and rank each product's variants;
5. write all the chunk's variants and mark the chunk done in ONE transaction (ON CONFLICT DO
   NOTHING: a second delivery stores nothing twice), then settle the job if it is complete.

A failure in steps 2-4 is recorded against the chunk (record_chunk_error), which parks it as
failed after settings.max_attempts attempts. A database outage in step 5 is waited out with
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

from copygen.catalogue import JobSettings, Product
from copygen.compliance import Lexicon, banned_phrases_for_decoding
from copygen.settings import Settings
from copygen.textnorm import normalise
from db.chunks import claim_chunk, mark_chunk_done, record_chunk_error
from db.engine import session_scope
from db.jobs import finish_job, get_job
from db.variants import upsert_variants
from trainer.generation import NO_REPEAT_NGRAM, Generator, Request
from worker import filters
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
    regenerations: int = 0
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


def _evaluate(texts: list[str], product: Product, lexicon, length: str, edges) -> list[list[str]]:
    """Flags of each variant in slot order; near-duplicates are judged against earlier slots."""
    return [filters.check(t, product, lexicon, texts[:v], length=length, edges=edges) for v, t in enumerate(texts)]


def draft_variants(
    generator: Generator,
    products: Sequence[Product],
    settings: JobSettings,
    lexicon: Lexicon,
    *,
    seed: int,
    rounds: int,
) -> list[list[VariantDraft]]:
    """settings.variants checked, scored and ranked variants for each product, in product order."""
    k = settings.variants
    edges = generator.length_edges  # the model's length buckets: what "short" means to it
    sources = [p.source() for p in products]
    sample = {"temperature": settings.temperature, "top_p": settings.top_p,
              "banned": banned_phrases_for_decoding(lexicon), "no_repeat_ngram": NO_REPEAT_NGRAM}

    def request(i: int, n: int) -> Request:
        return Request(source=sources[i], variants=n, length=settings.length, style=settings.style,
                       opening=settings.opening)

    texts = generator.generate([request(i, k) for i in range(len(products))],
                               seed=derive_seed(seed, 0), **sample)
    texts = [[normalise(t) for t in row] for row in texts]
    regens = [[0] * k for _ in products]
    flags = [_evaluate(texts[i], p, lexicon, settings.length, edges) for i, p in enumerate(products)]

    for round_no in range(1, rounds + 1):
        failing = {i: [v for v in range(k) if flags[i][v]] for i in range(len(products))}
        failing = {i: slots for i, slots in failing.items() if slots}
        if not failing:
            break
        order = list(failing)
        fresh = generator.generate([request(i, len(failing[i])) for i in order],
                                   seed=derive_seed(seed, round_no), **sample)
        for i, candidates in zip(order, fresh):
            product = products[i]
            for v, candidate in zip(failing[i], candidates):
                candidate = normalise(candidate)
                others = [t for j, t in enumerate(texts[i]) if j != v]
                current = filters.check(texts[i][v], product, lexicon, others, length=settings.length, edges=edges)
                new = filters.check(candidate, product, lexicon, others, length=settings.length, edges=edges)
                regens[i][v] += 1  # tries for this slot, kept or not
                if len(new) < len(current):
                    texts[i][v] = candidate
            flags[i] = _evaluate(texts[i], product, lexicon, settings.length, edges)

    drafts: list[list[VariantDraft]] = []
    for i, product in enumerate(products):
        row = []
        for v in range(k):
            others = [t for j, t in enumerate(texts[i]) if j != v]
            value = filters.score(texts[i][v], product, siblings=others, length=settings.length, edges=edges,
                                  flags=flags[i][v])
            row.append(VariantDraft(v + 1, texts[i][v], flags[i][v], regens[i][v], value))
        for draft, position in zip(row, filters.rank(row)):
            draft.rank = position
        drafts.append(row)
    return drafts


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
                                seed=derive_seed(base_seed, chunk_no), rounds=settings.regenerate_rounds)
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
    written = store_chunk(rt, engine, job_id, chunk_no, rows, settings)
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
