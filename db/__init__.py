"""The copy store: SQLAlchemy models, engine and session, and the queries and idempotent writes
the worker, the CLI and campaign tools rely on.

Alembic (``alembic/`` at the repository root) is the only way the schema changes; ``db.engine.upgrade``
runs it programmatically. Importing this package opens nothing and imports nothing of ours.
"""
