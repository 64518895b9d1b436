"""The catalogue schema: products and job settings, read from files or a payload, validated row by row.

One job per module; everything public is re-exported here, so ``from copygen.catalogue import X``
is the way to use it:

* :mod:`~copygen.catalogue.products`: Product, RowError, CatalogueError, the product field limits.
* :mod:`~copygen.catalogue.attribute_parsing`: parse_attributes (AdvertiseGen text or a JSON object).
* :mod:`~copygen.catalogue.rows`: validate_products, the column aliases and the row rules.
* :mod:`~copygen.catalogue.readers`: read_catalogue (CSV/TSV/XLSX/JSONL/JSON), rejection_message.
* :mod:`~copygen.catalogue.job_settings`: JobSettings, its defaults and limits, validate_settings,
  SettingsError.
* :mod:`~copygen.catalogue.payload`: validate_payload and submit_job_schema for ``copygen.submit_job``.
* :mod:`~copygen.catalogue.value_checks`: how raw values are described in error messages (internal).
"""

from __future__ import annotations

from copygen.catalogue.attribute_parsing import parse_attributes
from copygen.catalogue.job_settings import (
    DEFAULT_LENGTH,
    DEFAULT_QUEUE,
    DEFAULT_STYLE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    DEFAULT_VARIANTS,
    MAX_NAME_CHARS,
    MAX_OPENING_CHARS,
    MAX_OVERSAMPLE,
    MAX_SEED,
    MAX_TEMPERATURE,
    MAX_TOP_P,
    MIN_CLAUSE_FLOOR,
    QUEUES,
    JobSettings,
    SettingsError,
    validate_settings,
)
from copygen.catalogue.payload import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    PAYLOAD_KEYS,
    SCHEMA_FILE,
    submit_job_schema,
    validate_payload,
)
from copygen.catalogue.products import (
    FIELD_LIMITS,
    FIELDS,
    MAX_ATTRIBUTES_CHARS,
    MAX_CATEGORY_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_ID_CHARS,
    MAX_TITLE_CHARS,
    ROW_FIELD,
    CatalogueError,
    Product,
    RowError,
)
from copygen.catalogue.readers import ROW_CONVENTIONS, read_catalogue, rejection_message
from copygen.catalogue.rows import COLUMN_ALIASES, column_name, validate_products

__all__ = [
    "COLUMN_ALIASES",
    "DEFAULT_LENGTH",
    "DEFAULT_QUEUE",
    "DEFAULT_STYLE",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TOP_P",
    "DEFAULT_VARIANTS",
    "FIELDS",
    "FIELD_LIMITS",
    "MAX_ATTRIBUTES_CHARS",
    "MAX_CATEGORY_CHARS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "MAX_ID_CHARS",
    "MAX_NAME_CHARS",
    "MAX_OPENING_CHARS",
    "MAX_OVERSAMPLE",
    "MAX_SEED",
    "MAX_TEMPERATURE",
    "MAX_TITLE_CHARS",
    "MAX_TOP_P",
    "MIN_CLAUSE_FLOOR",
    "PAYLOAD_KEYS",
    "QUEUES",
    "ROW_CONVENTIONS",
    "ROW_FIELD",
    "SCHEMA_FILE",
    "CatalogueError",
    "JobSettings",
    "Product",
    "RowError",
    "SettingsError",
    "column_name",
    "parse_attributes",
    "read_catalogue",
    "rejection_message",
    "submit_job_schema",
    "validate_payload",
    "validate_products",
    "validate_settings",
]
