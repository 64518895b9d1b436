"""copygen's own Prometheus metrics, served by a worker on COPYGEN_METRICS_PORT (off by default).

A worker started with the port set calls ``serve(port)`` once; from then on ``active()`` returns
the process's WorkerMetrics and the hooks in worker.dispatch (chunks), worker.reconcile and
worker.schedule count what this process does. Without the port ``active()`` is None and the hooks
do nothing, so in-process runs and the CLI never touch prometheus_client.

The metrics live in a registry of their own (not prometheus_client's global one): nothing is
created at import, and a test can make as many WorkerMetrics as it likes.

Counts are per process. The solo pool (one process, the default of `copygen worker`) runs every
task in the process that serves them; a prefork pool runs tasks in child processes, whose counts
this server does not see (see the README).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

log = logging.getLogger(__name__)

# Chunk durations, seconds: a tiny CPU model finishes a chunk in seconds, a GPU batch of a few dozen
# products in tens of seconds, and the hard time limit is 2,100 s.
CHUNK_BUCKETS = (1, 2.5, 5, 10, 20, 40, 60, 120, 300, 600, 1200, 2400)


class WorkerMetrics:
    """The metrics of one worker process; names and meanings are listed in the README."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.chunks = Counter("copygen_chunks", "chunk task runs by outcome: done, skipped (already done or "
                              "claimed elsewhere), mismatch (handed back: another model), retry (failed, will run "
                              "again), parked (failed, attempts used up), error (raised: database away too long)",
                              ["outcome"], registry=r)
        self.chunk_seconds = Histogram("copygen_chunk_duration_seconds", "wall time of chunk task runs that "
                                       "claimed their chunk, by outcome", ["outcome"], buckets=CHUNK_BUCKETS,
                                       registry=r)
        self.products = Counter("copygen_products_stored", "products whose variants this worker stored",
                                registry=r)
        self.variants = Counter("copygen_variants_stored", "variants stored, by result: passed (no flag) or "
                                "flagged", ["result"], registry=r)
        self.flags = Counter("copygen_variants_flagged", "flagged variants stored, by flag family (ad_law, "
                             "contradiction, unstated, spliced, unfinished, ungrammatical, misplaced, self_contradiction, near_duplicate, repetition, "
                             "too_short, too_long); a variant with flags of two families counts in both", ["family"], registry=r)
        self.regenerations = Counter("copygen_regenerations", "extra generation rounds, summed over the stored "
                                     "products (a product short of k passing variants gets another round)",
                                     registry=r)
        self.tokens = Counter("copygen_tokens_generated", "tokens the model generated, every candidate counted "
                              "(also those not kept)", registry=r)
        self.generation_seconds = Counter("copygen_generation_seconds", "seconds spent in the generation engine",
                                          registry=r)
        self.tokens_per_second = Gauge("copygen_tokens_per_second", "generated tokens per second of the latest "
                                       "engine call", registry=r)
        self.model = Info("copygen_model", "the model version this worker serves", registry=r)
        self.reconcile_enqueued = Counter("copygen_reconcile_enqueued_chunks", "chunks the reconciler "
                                          "(copygen.reconcile, fired by beat) sent to workers again", registry=r)
        self.promo_jobs = Counter("copygen_promo_jobs_fired", "promo jobs created by copygen.fire_promo (fired "
                                  "by beat), by schedule; a double fire of a slot counts once", ["schedule"],
                                  registry=r)

    # -- hooks ----------------------------------------------------------------------------------

    def chunk_ran(self, status: str, seconds: float, stored: Callable[[], list[dict[str, Any]]]) -> None:
        """Count one chunk task run; stored() gives the chunk's stored variants when it wrote some."""
        self.chunks.labels(status).inc()
        if status in ("skipped", "mismatch"):  # nothing claimed, nothing generated: not a chunk's duration
            return
        self.chunk_seconds.labels(status).observe(seconds)
        if status == "done":
            self.count_stored(stored())

    def count_stored(self, rows: Iterable[dict[str, Any]]) -> None:
        """Count the variants one chunk stored (rows of db.jobs.chunk_variants)."""
        rounds: dict[int, int] = {}
        for row in rows:
            rounds[row["job_item_id"]] = max(rounds.get(row["job_item_id"], 0), row["regenerations"] or 0)
            self.variants.labels("passed" if row["passed"] else "flagged").inc()
            for family in dict.fromkeys(flag.split(":", 1)[0] for flag in row["flags"] or ()):
                self.flags.labels(family).inc()
        self.products.inc(len(rounds))
        self.regenerations.inc(sum(rounds.values()))

    def generated(self, tokens: int, seconds: float) -> None:
        self.tokens.inc(tokens)
        self.generation_seconds.inc(seconds)
        if seconds > 0:
            self.tokens_per_second.set(tokens / seconds)

    def counting(self, generator: Any) -> CountingGenerator:
        return CountingGenerator(generator, self)


class CountingGenerator:
    """A trainer Generator that reports the tokens it generates and the time it takes to the metrics;
    everything else passes through, so the pipeline cannot tell it from the Generator."""

    def __init__(self, generator: Any, metrics: WorkerMetrics) -> None:
        self._generator, self._metrics = generator, metrics

    def generate_candidates(self, *args: Any, **kwargs: Any):
        started = time.monotonic()
        rows = self._generator.generate_candidates(*args, **kwargs)
        self._metrics.generated(sum(c.tokens for row in rows for c in row), time.monotonic() - started)
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)


_active: WorkerMetrics | None = None


def active() -> WorkerMetrics | None:
    """This process's metrics if it serves them (serve() was called), else None."""
    return _active


def serve(port: int, addr: str = "0.0.0.0") -> WorkerMetrics:
    """Serve this process's metrics on http://addr:port/metrics from a background thread."""
    global _active
    if _active is None:
        metrics = WorkerMetrics()
        start_http_server(port, addr=addr, registry=metrics.registry)  # OSError if the port is taken
        _active = metrics
        log.info("serving Prometheus metrics on %s:%d/metrics", addr, port)
    return _active
