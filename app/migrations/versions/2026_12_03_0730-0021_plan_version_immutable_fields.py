"""an unsigned plan version keeps its kind, note and author (issue 16 review)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 07:30:00+00:00

0018's guards refused a change to a version's sections, inputs, number and plan, and any
change to a signed version; an unsigned version's kind, change note, author (id, name, role)
and creation time could still be rewritten, so a draft could be made to look proposed by
somebody else before a clinician signed it. Now everything that says what was proposed, by
whom and when is fixed once written; the signature columns are the one update allowed, from
empty to signed, once (a signed version never changes, as before), the signer's id only
with the signature.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What a version proposed, who proposed it and when: never changed once written.
PROPOSED = (
    "plan_id",
    "version",
    "kind",
    "sections",
    "inputs",
    "change_note",
    "created_by_id",
    "created_by_name",
    "created_by_role",
    "created_at",
)

_PG_DISTINCT = "\n            OR ".join(
    f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text"
    if c in ("sections", "inputs")
    else f"NEW.{c} IS DISTINCT FROM OLD.{c}"
    for c in PROPOSED
)

_PG_GUARD = f"""
CREATE OR REPLACE FUNCTION health_plan_version_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION 'health_plan_versions: version % is signed and never changes', OLD.version
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND ({_PG_DISTINCT}
            OR (NEW.signed_at IS NULL AND NEW.signed_by_id IS DISTINCT FROM OLD.signed_by_id)) THEN
        RAISE EXCEPTION 'health_plan_versions: what a version proposed never changes'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""

# 0018's function, restored by the downgrade.
_PG_GUARD_0018 = """
CREATE OR REPLACE FUNCTION health_plan_version_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION 'health_plan_versions: version % is signed and never changes', OLD.version
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.sections::text IS DISTINCT FROM OLD.sections::text
            OR NEW.inputs::text IS DISTINCT FROM OLD.inputs::text
            OR NEW.version IS DISTINCT FROM OLD.version
            OR NEW.plan_id IS DISTINCT FROM OLD.plan_id) THEN
        RAISE EXCEPTION 'health_plan_versions: a change is a new version'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


def _sqlite_trigger(columns: Sequence[str], message: str, *, signer_with_signature: bool) -> str:
    changed = " ".join(f"OR NEW.{c} IS NOT OLD.{c}" for c in columns)
    if signer_with_signature:  # the signer's id comes with the signature, not before it
        changed += " OR (NEW.signed_at IS NULL AND NEW.signed_by_id IS NOT OLD.signed_by_id)"
    return (
        "CREATE TRIGGER health_plan_versions_no_update BEFORE UPDATE ON health_plan_versions "
        f"WHEN OLD.signed_at IS NOT NULL {changed} "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)  # the trigger of 0018 calls it
    else:
        op.execute("DROP TRIGGER IF EXISTS health_plan_versions_no_update")
        op.execute(
            _sqlite_trigger(
                PROPOSED,
                "health_plan_versions: a signed version never changes; what a version "
                "proposed, by whom and when never changes: a change is a new version",
                signer_with_signature=True,
            )
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD_0018)
    else:
        op.execute("DROP TRIGGER IF EXISTS health_plan_versions_no_update")
        op.execute(
            _sqlite_trigger(
                ("sections", "inputs", "version", "plan_id"),
                "health_plan_versions: a signed version never changes; a change is a new version",
                signer_with_signature=False,
            )
        )
