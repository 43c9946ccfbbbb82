"""Refuse overlapping periods of one parameter code in the database itself.

The service checks this first (with the code's rows locked) and gives a precise error; the
triggers make sure nothing else that connects as the application can store two values of one
parameter for the same day. Periods are inclusive; a null ``valid_to`` means open.

A PostgreSQL exclusion constraint over a daterange would be the textbook form, but mixing the
code's equality into a GiST index needs the btree_gist extension, which a managed database may
not let the application install; a trigger works everywhere.
"""

from django.db import migrations

TABLE = "contributions_parameter"

# A row overlaps another of the same code when each starts on or before the other's end.
OVERLAP = (
    "EXISTS (SELECT 1 FROM contributions_parameter p WHERE p.code = NEW.code AND p.id <> NEW.id"
    " AND (p.valid_to IS NULL OR p.valid_to >= NEW.valid_from)"
    " AND (NEW.valid_to IS NULL OR NEW.valid_to >= p.valid_from))"
)

POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION contributions_parameter_refuse_overlap() RETURNS trigger AS $$
BEGIN
    IF {OVERLAP} THEN
        RAISE EXCEPTION 'parameter %% has an overlapping period', NEW.code;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION)
        schema_editor.execute(
            f"CREATE TRIGGER {TABLE}_no_overlap BEFORE INSERT OR UPDATE ON {TABLE} "
            f"FOR EACH ROW EXECUTE FUNCTION contributions_parameter_refuse_overlap()"
        )
    elif vendor == "sqlite":
        # SQLite assigns NEW.id on insert only after BEFORE triggers when it is omitted, so
        # NEW.id is NULL or -1 there; "p.id <> NEW.id" is then NULL — hence the COALESCE.
        overlap = OVERLAP.replace("p.id <> NEW.id", "p.id <> COALESCE(NEW.id, -1)")
        for event in ("INSERT", "UPDATE"):
            schema_editor.execute(
                f"CREATE TRIGGER {TABLE}_no_overlap_{event.lower()} BEFORE {event} ON {TABLE} "
                f"WHEN {overlap} "
                f"BEGIN SELECT RAISE(ABORT, 'parameter has an overlapping period'); END"
            )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_overlap ON {TABLE}")
        schema_editor.execute("DROP FUNCTION IF EXISTS contributions_parameter_refuse_overlap()")
    else:
        for event in ("insert", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_overlap_{event}")


class Migration(migrations.Migration):
    dependencies = [("contributions", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
