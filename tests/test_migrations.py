"""The schema comes from Alembic migrations, and the models never drift from them."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from newsletter.config import load_settings
from newsletter.db import alembic_config, make_engine, migrate


def test_migrations_build_the_models_schema(tmp_path):
    engine = make_engine(load_settings({"JEUDIS_HOME": str(tmp_path)}))
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"models and migrations differ: add a revision ({diff})"
    assert {"content_item", "issue", "subscriber", "delivery", "feed"} <= set(
        inspect(engine).get_table_names()
    )


def test_downgrade_and_upgrade_again(tmp_path):
    engine = make_engine(load_settings({"JEUDIS_HOME": str(tmp_path)}))
    migrate(engine)
    migrate(engine)  # twice is harmless
    command.downgrade(alembic_config(engine), "base")
    assert inspect(engine).get_table_names() == ["alembic_version"]
    migrate(engine)
    assert "issue" in inspect(engine).get_table_names()
