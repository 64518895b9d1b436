"""Engine, session scope and schema upgrade for the copy store.

The caller owns the session and the transaction: data functions in db/ take a Session and never
commit; session_scope is the one place that commits.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# alembic/ and alembic.ini live at the repository root, next to this package; an editable install
# (pip install -e .) and the container image both keep that layout.
REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT_LOCATION = REPO_ROOT / "alembic"

SQLITE_BUSY_TIMEOUT_S = 30  # a writer waits this long for another's lock before "database is locked"


def normalise_url(url: str | URL) -> URL:
    """The URL with PostgreSQL pointed at psycopg 3 (postgresql:// and postgres:// mean psycopg)."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    url = make_url(url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


def make_engine(url: str | URL, **kwargs) -> Engine:
    """An Engine for the copy store at url (PostgreSQL or SQLite); extra kwargs go to create_engine.

    SQLite gets foreign keys enforced, WAL (readers never block the writer) and a 30 s busy
    timeout; the directory of a SQLite file is created. PostgreSQL connections are pinged before
    use, so a restarted server costs a reconnect rather than an error.
    """
    url = normalise_url(url)
    kwargs.setdefault("json_serializer", _json_dumps)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _json_dumps(value) -> str:
    # Chinese stays readable (and a third of the size) in the database, rather than \uXXXX escapes.
    return json.dumps(value, ensure_ascii=False)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode=WAL")  # stays 'memory' for an in-memory database
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe under WAL; commits skip an fsync
    finally:
        cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A Session in a transaction: committed when the block ends, rolled back if it raises.

    Objects stay readable after the commit (expire_on_commit=False).
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str | URL):
    """An Alembic Config for the migrations in alembic/, pointed at url; works from any cwd."""
    from alembic.config import Config

    if not (SCRIPT_LOCATION / "env.py").is_file():
        raise RuntimeError(
            f"Alembic migrations not found at {SCRIPT_LOCATION}: db must run from a source checkout "
            "or an editable install (pip install -e .), with alembic/ next to db/"
        )
    ini = REPO_ROOT / "alembic.ini"
    # Alembic's default stdout is bound when alembic.config is first imported; if that happened
    # while something had swapped sys.stdout (a CLI capturing output), the default is a closed file.
    config = Config(str(ini) if ini.is_file() else None, stdout=sys.stdout)
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    rendered = normalise_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # ConfigParser interpolation
    config.attributes["configure_logging"] = False  # the caller's logging stays as it is
    return config


class SchemaError(ValueError):
    """The copy store's schema is missing or behind the code; the message says what to run."""


def migrations():
    """alembic/'s migration scripts (alembic.script.ScriptDirectory)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str:
    """The latest migration in alembic/."""
    return migrations().get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database at engine is at; None for a database without copygen's schema."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def prepare_schema(engine: Engine) -> None:
    """Make sure the copy store has the latest schema before anything is read or written.

    The embedded SQLite store is created or upgraded here: it belongs to this installation. Any
    other database is migrated by its operator (`copygen migrate`), so a missing or older schema
    is a SchemaError naming that command, never a "relation does not exist" deep in a job.
    """
    scripts = migrations()
    head, current = scripts.get_current_head(), current_revision(engine)
    where = engine.url.render_as_string(hide_password=True)
    if current is not None and not known_revision(current, scripts):
        raise SchemaError(f"the database {where} is at migration {current}, which this copygen does not know "
                          f"(its latest is {head}): the database was migrated by a newer copygen; upgrade this one")
    if engine.url.get_backend_name() == "sqlite":
        if current != head:
            upgrade(engine.url)
        return
    if current != head:
        state = "has no copygen schema" if current is None else f"is at migration {current}, not the latest ({head})"
        raise SchemaError(f"the database {where} {state}: run `copygen migrate` first")


def known_revision(revision: str, scripts=None) -> bool:
    """Whether alembic/ (or the given ScriptDirectory) has this migration."""
    from alembic.util import CommandError

    try:
        return (scripts or migrations()).get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the database at url up to revision (alembic upgrade head), creating it if empty."""
    from alembic import command

    log.info("upgrading %s to %s", normalise_url(url).render_as_string(hide_password=True), revision)
    command.upgrade(alembic_config(url), revision)
