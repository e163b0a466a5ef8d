"""Alembic environment of the PostGIS store (``karte db upgrade`` / ``alembic upgrade head``).

The database URL comes from ``config.attributes["url"]`` (set by :func:`karte.store.cli.db_upgrade`),
else ``sqlalchemy.url`` of ``alembic.ini``, else ``KARTE_DATABASE_URL``. Migrations run as a role
that may create schemas, tables and roles (the database owner), never as the application role.
Concurrent upgrades are serialised by an advisory lock; the whole upgrade is one transaction.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool, text

from karte.store.postgis_models import SCHEMA, Base

config = context.config
MIGRATION_LOCK = 0x6B61727465  # "karte"


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") \
        or os.environ.get("KARTE_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        raise SystemExit("karte migrations need a postgresql+psycopg:// URL (KARTE_DATABASE_URL)")
    return url


def _include_name(name, type_, parent_names) -> bool:
    if type_ == "schema":
        return name == SCHEMA
    return True


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True,
                      version_table_schema=SCHEMA, include_schemas=True, include_name=_include_name)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        try:
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            connection.commit()
            context.configure(connection=connection, target_metadata=Base.metadata,
                              version_table_schema=SCHEMA, include_schemas=True,
                              include_name=_include_name, transaction_per_migration=False)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            # a failed step leaves the transaction aborted: roll it back so the unlock runs and the
            # first error (not "current transaction is aborted") is the one reported
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
