"""The ``copygen.submit_job`` payload: products, job settings and an idempotency key, checked as a whole.

:func:`validate_payload` is the authority; :func:`submit_job_schema` returns the JSON Schema in
``copygen/schemas/submit_job.schema.json``, which describes a payload every row of which is valid.
A payload that is wrong as a whole raises SettingsError naming every key at fault; bad products
are row errors (:mod:`copygen.catalogue.rows`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from copygen.catalogue.job_settings import JobSettings, SettingsError, validate_settings
from copygen.catalogue.products import Product, RowError
from copygen.catalogue.rows import validate_products
from copygen.catalogue.value_checks import clip, kind_of

MAX_IDEMPOTENCY_KEY_CHARS = 200
PAYLOAD_KEYS = ("products", "settings", "idempotency_key")
SCHEMA_FILE = "submit_job.schema.json"  # in the copygen package's schemas/ folder


def validate_payload(
    payload: Mapping[str, Any], max_variants: int, max_products: int
) -> tuple[list[Product], list[RowError], JobSettings, str | None]:
    """(products, row errors, settings, idempotency key) from a copygen.submit_job payload.

    The payload is {"products": [...], "settings": {...}, "idempotency_key": str | null};
    "products" is required, the others may be left out. A payload that is wrong as a whole (not
    an object, an unknown or missing key, products not a list, empty or over max_products, bad
    settings) raises SettingsError naming every key at fault; bad products are row errors.
    """
    if not isinstance(payload, Mapping):
        raise SettingsError([("payload", f"expected an object, got {kind_of(payload)}")])
    problems: list[tuple[str, str]] = []
    problems.extend((clip(str(key)), f"unknown payload key; known: {', '.join(PAYLOAD_KEYS)}")
                    for key in payload if key not in PAYLOAD_KEYS)
    rows = payload.get("products")
    if "products" not in payload:
        problems.append(("products", "missing; the payload needs a list of products"))
    elif not isinstance(rows, (list, tuple)):
        problems.append(("products", f"expected a list of product objects, got {kind_of(rows)}"))
    elif not rows:
        problems.append(("products", "is empty; a job needs at least one product"))
    elif len(rows) > max_products:
        problems.append(("products", (f"{len(rows)} products, more than the maximum of {max_products} "
                                      "per job (COPYGEN_MAX_PRODUCTS); split the catalogue into several jobs")))
    key = payload.get("idempotency_key")
    if key is not None:
        if not isinstance(key, str):
            problems.append(("idempotency_key", f"expected text or null, got {kind_of(key)}"))
        elif not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
            problems.append(("idempotency_key", (f"must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, "
                                                 f"not {len(key)}; send null for no key")))
    settings = JobSettings()
    try:
        settings = validate_settings(payload.get("settings"), max_variants)
    except SettingsError as exc:
        problems.extend((f"settings.{name}" if name != "settings" else name, reason)
                        for name, reason in exc.problems)
    if problems:
        raise SettingsError(problems)
    products, errors = validate_products(rows, source="payload")
    return products, errors, settings, key


def submit_job_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the copygen.submit_job payload, read from the package."""
    text = resources.files("copygen").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)
