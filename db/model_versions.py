"""Model versions: the checkpoints that wrote copy, by name, with their manifests.

variants.model_version and jobs.model_version hold these names, so a name always means one
model: registering a name again with another manifest is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import ModelVersion, utcnow
from db.upsert import dialect_insert

log = logging.getLogger(__name__)

MODEL_VERSIONS = ModelVersion.__table__


class ModelVersionConflict(ValueError):
    """A model version name is already registered with a different manifest."""


def _as_json(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(manifest, ensure_ascii=False, default=str))


def register_model_version(s: Session, name: str, path: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Register a checkpoint under name and return its row (name, path, manifest, created_at).

    Registering the same name and manifest again is a no-op, except that a moved checkpoint
    gets its new path. The same name with a different manifest raises ModelVersionConflict.
    """
    manifest = _as_json(manifest)
    s.execute(
        dialect_insert(s, MODEL_VERSIONS)
        .values(name=name, path=str(path), manifest=manifest, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[MODEL_VERSIONS.c.name])
    )
    existing = get_model_version(s, name)
    if existing is None:  # only if the row vanished between the two statements
        raise LookupError(f"model version {name!r} could not be registered")
    if existing["manifest"] != manifest:
        raise ModelVersionConflict(
            f"model version {name!r} is already registered with a different manifest "
            f"(checkpoint {existing['path']}); give the new checkpoint another name"
        )
    if existing["path"] != str(path):
        s.execute(update(MODEL_VERSIONS).where(MODEL_VERSIONS.c.name == name).values(path=str(path)))
        log.info("model version %s moved: %s -> %s", name, existing["path"], path)
        existing["path"] = str(path)
    return existing


def get_model_version(s: Session, name: str) -> dict[str, Any] | None:
    """The model version row (name, path, manifest, created_at), or None."""
    row = (
        s.execute(
            select(
                MODEL_VERSIONS.c.name,
                MODEL_VERSIONS.c.path,
                MODEL_VERSIONS.c.manifest,
                MODEL_VERSIONS.c.created_at,
            ).where(MODEL_VERSIONS.c.name == name)
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row is not None else None


def list_model_versions(s: Session) -> list[dict[str, Any]]:
    """All registered model versions, newest first."""
    rows = s.execute(
        select(
            MODEL_VERSIONS.c.name,
            MODEL_VERSIONS.c.path,
            MODEL_VERSIONS.c.manifest,
            MODEL_VERSIONS.c.created_at,
        ).order_by(MODEL_VERSIONS.c.created_at.desc(), MODEL_VERSIONS.c.id.desc())
    ).mappings()
    return [dict(row) for row in rows]
