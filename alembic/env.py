"""Alembic environment for the copy store: the schema is db.models.Base.metadata.

The URL comes from, in order: `alembic -x url=...`, a URL set on the Config by code
(db.engine.upgrade), and copygen's settings (COPYGEN_DATABASE_URL, else the embedded default).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool

from copygen.settings import get_settings
from db.engine import make_engine, normalise_url
from db.models import VIEW_NAMES, Base, UTCDateTime

MIGRATION_LOCK = 0x636F7079  # PostgreSQL advisory lock key held while migrating ("copy")

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def database_url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or get_settings().database_url
    )


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    # The campaign views are made by the migration in SQL; they are not ORM tables.
    return not (type_ == "table" and name in VIEW_NAMES)


def render_item(type_, obj, autogen_context):
    # Migrations are frozen: they spell column types in plain SQLAlchemy, never db.models types.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure(**kwargs) -> None:
    url = kwargs.get("url") or kwargs["connection"].engine.url
    context.configure(
        target_metadata=target_metadata,
        include_object=include_object,
        render_item=render_item,
        compare_type=True,
        render_as_batch=url.get_backend_name() == "sqlite",  # SQLite alters a table by copying it
        **kwargs,
    )


def run_migrations_offline() -> None:
    configure(url=normalise_url(database_url()), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # A batch migration copies and drops tables; with foreign keys enforced the drop
                # would cascade into the rows that point at the old table.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            configure(connection=connection)
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Two processes upgrading at once (workers starting together) take turns; the
                    # second then finds the schema at head. Released when the transaction ends.
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
