"""Trigram indexes for partial name search on PostgreSQL.

Name search matches every query word anywhere in the normalised name (``LIKE '%word%'``). A B-tree
cannot serve that; a pg_trgm GIN index can, which keeps search fast at millions of persons. SQLite
(the embedded default, for small offices) scans the column instead.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS registry_person_name_trgm ON registry_person "
        "USING gin (normalized_name gin_trgm_ops)"
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS registry_employer_name_trgm ON registry_employer "
        "USING gin (normalized_name gin_trgm_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS registry_person_name_trgm")
    schema_editor.execute("DROP INDEX IF EXISTS registry_employer_name_trgm")


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
