"""One settings object, read from COPYGEN_* environment variables (and an optional .env)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COPYGEN_", env_file=".env", extra="ignore")

    # Embedded default: a SQLite file and in-process execution, nothing to run beforehand.
    database_url: str = Field("sqlite:///var/copygen.db", description="SQLAlchemy URL of the copy store")
    broker_url: str = Field("memory://", description="Celery broker; memory:// runs jobs in-process")
    checkpoint: Path = Field(Path("models/demo"), description="checkpoint directory the worker loads")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")

    # torch uses every core in each process: several CPU workers on one host should split them.
    threads: int = Field(0, ge=0, description="CPU threads of a worker's model; 0: torch's default (all cores)")
    chunk_size: int = Field(32, ge=1, le=1000, description="products per chunk task")
    batch_size: int = Field(96, ge=1, description="sequences decoded together (slots of the generation engine)")
    max_variants: int = Field(10, ge=1, le=50, description="largest variants-per-product a job may ask")
    max_products: int = Field(2_000_000, ge=1, description="largest catalogue one job may hold")
    max_attempts: int = Field(3, ge=1, description="tries of a chunk before it is parked as failed")
    # k x oversample candidates per product, the k best kept (measured: see the README's Quality section)
    oversample: int = Field(3, ge=1, le=10, description="candidates generated per variant kept, by default")
    regenerate_rounds: int = Field(2, ge=0, description="regeneration rounds for products with fewer than k passing")
    # written by `copygen tune-score` from reviewers' decisions; unset: worker.selection's own WEIGHTS
    score_weights: Path | None = Field(None, description="score weights file a worker ranks candidates with")
    # Logit bonuses toward the product's own attribute values while decoding (trainer/generation/
    # nudging.py): on a value word's first token, and on the next token of one begun. Chosen on the
    # validation split (see the README's "Quality: what the worker publishes"); 0 and 0 turn nudging off.
    nudge_start: float = Field(2.0, ge=0, le=10, description="logit bonus on the first token of a product's value word")
    nudge_follow: float = Field(6.0, ge=0, le=20, description="logit bonus on the next token of a begun value word")
    # Longer than the hard time limit, so a chunk still running is never handed to a second worker.
    lease_seconds: int = Field(2400, ge=10, description="a running chunk older than this is re-enqueued")
    # Longer than the slowest chunk, or Redis hands a running chunk to a second worker.
    visibility_timeout: int = Field(4 * 3600, ge=60, description="Redis visibility timeout, seconds")
    task_soft_time_limit: int = Field(1800, ge=10, description="soft time limit of a chunk task, seconds")
    task_time_limit: int = Field(2100, ge=10, description="hard time limit of a chunk task, seconds")
    reconcile_seconds: int = Field(60, ge=5, description="period of the reconciler under beat")
    schedule_file: Path | None = Field(None, description="promo schedule file (YAML or JSON) for beat")
    # Beat remembers when each schedule last ran; kept under var/ rather than the working directory.
    beat_state: Path = Field(Path("var/celerybeat-schedule"), description="beat's state file")
    log_level: str = Field("INFO", description="logging level of the CLI and workers")
    # Off by default: a port is a deployment decision (one per worker on a host).
    metrics_port: int | None = Field(None, ge=1, le=65535,
                                     description="port on which each worker serves Prometheus /metrics; unset: none")
    stuck_hours: float = Field(24.0, gt=0, description="`copygen health`: a job pending this many hours is stuck")

    @property
    def in_process(self) -> bool:
        """The embedded default: no broker, a job's chunks run in the process that submits it."""
        return self.broker_url.startswith("memory://")


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; read once, at an entry point, never at import."""
    return Settings()


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?P<tail>@)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and status output."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "***" + m.group("tail"), str(url))
