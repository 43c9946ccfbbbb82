"""Staged declaration lines live in an UNLOGGED table on PostgreSQL.

Staging is rebuilt from the kept original file whenever needed, so it need not be written to
the write-ahead log: that halves the time to stage a million lines. After a database crash
PostgreSQL empties unlogged tables; posting notices that a declaration's staged lines are
missing (``services.declaration_post`` counts them) and validates the file again instead of
posting nothing. SQLite has no such tables; nothing changes there.
"""

from django.db import migrations


def unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE contributions_declarationline SET UNLOGGED")


def logged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE contributions_declarationline SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("contributions", "0006_bulk_keys_and_indexes")]

    operations = [migrations.RunPython(unlogged, logged)]
