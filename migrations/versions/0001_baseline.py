"""The baseline: every table Linkway owned when migrations began, exactly as
``create_all`` made them, and the payment ledger's append-only triggers and lock row.

Revision ID: 0001
Revises: (none)
Created: 2026-12-02

Why: migrations start here. A database made by ``create_all`` before this revision
existed has exactly this schema, so ``linkway migrate`` stamps it at 0001 instead of
creating anything (``ops.schema.adopt_legacy``). The trigger DDL is copied from
``payments/guards.py`` as it was on this day, not imported: a migration is frozen once
committed. No backfill.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The ledger's history cannot be changed, by the application or by hand: the database
# refuses UPDATE and DELETE (and on PostgreSQL TRUNCATE) on these tables.
GUARDED = ("ledger_entries", "outcome_events", "ledger_checkpoints")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION linkway_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING
    MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' is not allowed',
    ERRCODE = 'insufficient_privilege';
END $$
"""


def _guards(dialect: str) -> list[str]:
    if dialect == "postgresql":
        ddl = [_PG_FUNCTION]
        for table in GUARDED:
            ddl += [
                f"CREATE TRIGGER {table}_append_only_rows BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION linkway_append_only()",
                f"CREATE TRIGGER {table}_append_only_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION linkway_append_only()",
            ]
        return ddl
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op_name} is not allowed'); END"
            for table in GUARDED
            for op_name in ("UPDATE", "DELETE")
        ]
    raise NotImplementedError(f"no append-only guard for {dialect}; use SQLite or PostgreSQL")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("resource", sa.String(length=16), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_referral_id"), ["referral_id"], unique=False)

    op.create_table(
        "case_notes",
        sa.Column("note_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("note_id"),
    )
    with op.batch_alter_table("case_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_notes_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "directory_locations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("address_1", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("postal_code", sa.String(length=16), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "directory_organizations",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "handoffs",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(), nullable=True),
        sa.Column("waitlist_band", sa.String(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attended", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id"),
    )
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.create_index("ix_handoffs_provider", ["provider_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoffs_referral_id"), ["referral_id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(length=160), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("reserved_id", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key"),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledger_checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_checkpoints_seq"), ["seq"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry_id", sa.String(length=36), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("claim_id", sa.String(length=36), nullable=False),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_pence", sa.Integer(), nullable=False),
        sa.Column("rate_card_version", sa.String(length=64), nullable=False),
        sa.Column("evidence_event_ids", sa.String(), nullable=False),
        sa.Column("measurement_ids", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("entry_id"),
        sa.UniqueConstraint("hash"),
        sa.UniqueConstraint("prev_hash"),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_claim", ["claim_id", "seq"], unique=False)
        batch_op.create_index(
            "ix_ledger_statement", ["contract_id", "partner_id", "period"], unique=False
        )

    op.create_table(
        "ledger_lock",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("appends", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("headers", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_key"), ["key"], unique=False)
        batch_op.create_index("ix_outbox_unpublished", ["published_at", "seq"], unique=False)

    op.create_table(
        "outcome_events",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("envelope", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("outcome_events", schema=None) as batch_op:
        batch_op.create_index("ix_outcome_events_episode", ["referral_id", "episode"], unique=False)
        batch_op.create_index(batch_op.f("ix_outcome_events_type"), ["type"], unique=False)

    op.create_table(
        "personal_data",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("nhs_index", sa.String(length=64), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    with op.batch_alter_table("personal_data", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_personal_data_nhs_index"), ["nhs_index"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_personal_data_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "referral_episodes",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("dormant_reason", sa.String(), nullable=True),
        sa.Column("support_level", sa.String(), nullable=True),
        sa.Column("attended_sessions", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "number"),
    )
    op.create_table(
        "referral_measurements",
        sa.Column("measurement_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("instrument", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("raw", sa.String(), nullable=False),
        sa.Column("derived", sa.String(), nullable=False),
        sa.Column("administered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("measurement_id"),
    )
    with op.batch_alter_table("referral_measurements", schema=None) as batch_op:
        batch_op.create_index("ix_measurements_referral", ["referral_id", "episode"], unique=False)

    op.create_table(
        "referral_referrers",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "partner_id"),
    )
    with op.batch_alter_table("referral_referrers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_referrers_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "referral_timeline",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=True),
        sa.Column("locality", sa.String(length=64), nullable=True),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("link_worker_id", sa.String(length=64), nullable=True),
        sa.Column("last_event_id", sa.String(length=64), nullable=False),
        sa.Column("last_event_type", sa.String(length=120), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    with op.batch_alter_table("referral_timeline", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_timeline_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("locality", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("link_worker_id", sa.String(length=64), nullable=True),
        sa.Column("support_level", sa.String(), nullable=True),
        sa.Column("consent_to_share", sa.Boolean(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_due_action", sa.String(), nullable=True),
        sa.Column("deadlines", sa.String(), nullable=False),
        sa.Column("overdue", sa.String(), nullable=False),
        sa.Column("attended_sessions", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.String(), nullable=False),
        sa.Column("handoffs", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referrals_caseload", ["partner_id", "stage", "next_due_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_referrals_locality"), ["locality"], unique=False)
        batch_op.create_index(
            "ix_referrals_worker", ["link_worker_id", "next_due_at"], unique=False
        )

    op.create_table(
        "directory_services",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("eligibility_description", sa.String(), nullable=True),
        sa.Column("minimum_age", sa.Integer(), nullable=True),
        sa.Column("maximum_age", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.String(length=16), nullable=True),
        sa.Column("waitlist_band", sa.String(length=16), nullable=True),
        sa.Column("capacity_reason", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["directory_organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("directory_services", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_services_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "directory_service_at_locations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("location_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["directory_locations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["directory_services.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("directory_service_at_locations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_service_at_locations_service_id"), ["service_id"], unique=False
        )

    op.create_table(
        "directory_service_categories",
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("taxonomy", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["directory_services.id"],
        ),
        sa.PrimaryKeyConstraint("service_id", "code"),
    )
    with op.batch_alter_table("directory_service_categories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_service_categories_code"), ["code"], unique=False
        )
    for statement in _guards(op.get_bind().dialect.name):
        op.execute(statement)
    # The one row every ledger append locks, so appends are serialised on any database.
    op.execute("INSERT INTO ledger_lock (name, appends) VALUES ('ledger', 0)")


def downgrade() -> None:
    # Dropping the tables drops their triggers; the function is PostgreSQL's alone.
    with op.batch_alter_table("directory_service_categories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_service_categories_code"))

    op.drop_table("directory_service_categories")
    with op.batch_alter_table("directory_service_at_locations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_service_at_locations_service_id"))

    op.drop_table("directory_service_at_locations")
    with op.batch_alter_table("directory_services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_services_organization_id"))

    op.drop_table("directory_services")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_worker")
        batch_op.drop_index(batch_op.f("ix_referrals_locality"))
        batch_op.drop_index("ix_referrals_caseload")

    op.drop_table("referrals")
    with op.batch_alter_table("referral_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_timeline_partner_id"))

    op.drop_table("referral_timeline")
    with op.batch_alter_table("referral_referrers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_referrers_partner_id"))

    op.drop_table("referral_referrers")
    with op.batch_alter_table("referral_measurements", schema=None) as batch_op:
        batch_op.drop_index("ix_measurements_referral")

    op.drop_table("referral_measurements")
    op.drop_table("referral_episodes")
    op.drop_table("processed_events")
    with op.batch_alter_table("personal_data", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_personal_data_partner_id"))
        batch_op.drop_index(batch_op.f("ix_personal_data_nhs_index"))

    op.drop_table("personal_data")
    with op.batch_alter_table("outcome_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outcome_events_type"))
        batch_op.drop_index("ix_outcome_events_episode")

    op.drop_table("outcome_events")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unpublished")
        batch_op.drop_index(batch_op.f("ix_outbox_key"))
        batch_op.drop_index(batch_op.f("ix_outbox_created_at"))

    op.drop_table("outbox")
    op.drop_table("ledger_lock")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_statement")
        batch_op.drop_index("ix_ledger_claim")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("ledger_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_checkpoints_seq"))

    op.drop_table("ledger_checkpoints")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoffs_referral_id"))
        batch_op.drop_index("ix_handoffs_provider")

    op.drop_table("handoffs")
    op.drop_table("directory_organizations")
    op.drop_table("directory_locations")
    with op.batch_alter_table("case_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_notes_referral_id"))

    op.drop_table("case_notes")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_referral_id"))
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_actor_id"))

    op.drop_table("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS linkway_append_only()")
