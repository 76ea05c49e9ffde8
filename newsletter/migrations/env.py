"""Alembic environment: the engine comes from newsletter.db (no alembic.ini needed)."""

from alembic import context
from sqlmodel import SQLModel

import newsletter.models  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,  # SQLite cannot ALTER most things
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
