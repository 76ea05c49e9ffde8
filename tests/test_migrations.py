"""The schema comes from Alembic migrations, and the models never drift from them, nor the
plain views of them that start-up reads without Alembic or the ORM."""

from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from newsletter import items_table
from newsletter.config import load_settings
from newsletter.db import alembic_config, make_engine, migrate
from newsletter.models import AwareDateTime, ContentItem
from newsletter.revisions import head_revision


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


def test_content_identity_migration_keeps_one_item_per_file(tmp_path):
    """Items imported twice (through `content/` and `content/news`) become one identity."""
    engine = make_engine(load_settings({"JEUDIS_HOME": str(tmp_path)}))
    config = alembic_config(engine)
    command.upgrade(config, "0001")
    now = datetime(2026, 11, 20, 9, 0)
    rows = [  # (id, key, status, url)
        (1, "file:news/a.md", "queued", "https://a.example.org/"),
        (2, "file:a.md", "queued", "https://a.example.org/"),  # the same file, again
        (3, "file:news/b.md", "queued", "https://b.example.org/"),
        (4, "file:b.md", "used", "https://b.example.org/"),  # its copy already went out
        (5, "file:tools/c.md", "queued", "https://c.example.org/"),
        (6, "file:c.md", "queued", "https://other.example.org/"),  # another file
    ]
    with engine.begin() as conn:
        for item_id, key, status, url in rows:
            conn.execute(
                text(
                    "INSERT INTO content_item (id, kind, status, title, url, summary, body,"
                    " priority, source, source_key, created_at, updated_at)"
                    " VALUES (:id, 'news', :status, 't', :url, '', '', 0, 'import', :key,"
                    " :now, :now)"
                ),
                {"id": item_id, "status": status, "url": url, "key": key, "now": now},
            )
    command.upgrade(config, "e1_content_identity")
    with engine.connect() as conn:
        after = {
            row.id: (row.source_key, row.status)
            for row in conn.execute(text("SELECT id, source_key, status FROM content_item"))
        }
    assert after == {
        1: ("file:news/a.md", "queued"),
        2: (None, "dropped"),
        3: (None, "dropped"),
        4: ("file:news/b.md", "used"),
        5: ("file:tools/c.md", "queued"),
        6: ("file:c.md", "queued"),
    }


def test_the_head_read_from_the_files_is_alembics(tmp_path):
    engine = make_engine(load_settings({"JEUDIS_HOME": str(tmp_path)}))
    script = ScriptDirectory.from_config(alembic_config(engine))
    assert head_revision() == script.get_current_head()
    engine.dispose()


def revision_file(folder, name: str, revision: str, down: str) -> None:
    (folder / f"{name}.py").write_text(
        f'"""{name}\n\nRevision ID: {revision}\nRevises: {down}\n"""\n\n'
        f"revision: str = {revision!r}\ndown_revision: str | None = {down}\n",
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    ("files", "head"),
    [
        ([("a", "None"), ("b", "'a'"), ("c", "'b'")], "c"),
        ([("a", "None"), ("b", "'a'"), ("c", "'a'")], None),  # two heads: Alembic decides
        ([("a", "None"), ("b", "'a'"), ("c", "'a'"), ("m", "('b', 'c')")], "m"),  # a merge
        ([("a", "None"), ("b", "f'{x}'")], None),  # not a literal: Alembic decides
    ],
)
def test_the_head_of_a_history(tmp_path, files, head):
    for revision, down in files:
        revision_file(tmp_path, f"000_{revision}", revision, down)
    assert head_revision(tmp_path) == head


def test_the_plain_view_of_the_items_table_is_the_models():
    columns = ContentItem.__table__.columns
    assert items_table.ITEM_COLUMNS == tuple(ContentItem.model_fields) == tuple(columns.keys())
    kinds = {c.name: type(c.type) for c in columns}
    dates = {name for name, kind in kinds.items() if issubclass(kind, sa.Date)}
    aware = {name for name, kind in kinds.items() if issubclass(kind, AwareDateTime)}
    assert (dates, aware) == (items_table.DATE_COLUMNS, items_table.DATETIME_COLUMNS)
    assert not [name for name, kind in kinds.items() if issubclass(kind, sa.DateTime)]
