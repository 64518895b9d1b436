"""INSERT ... ON CONFLICT in the dialect of a session's database (PostgreSQL or SQLite).

Both dialects spell it the same way (on_conflict_do_nothing / on_conflict_do_update), but the
statement has to be built from the right dialect module.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def dialect_insert(s: Session, table: Table):
    """An INSERT for table that supports .on_conflict_do_nothing() on the session's database."""
    name = s.get_bind().dialect.name
    try:
        return _INSERTS[name](table)
    except KeyError:
        raise NotImplementedError(f"the copy store supports PostgreSQL and SQLite, not {name}") from None
