"""Every table, in one metadata. SQLAlchemy Core tables (see docs/decisions/001-core-tables.md).

Ledger tables (``transfers``, ``lot_movements``, ``operations``, ``rule_versions``,
``audit_log``) are append-only: ``gateway.db.guards`` installs triggers that refuse UPDATE and
DELETE on them. CHECK constraints restate the ledger guarantees the database can see.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from gateway.db.types import UTCDateTime

metadata = MetaData()

# --- partners and their versioned rules ---------------------------------------------------------
partners = Table(
    "partners",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

rule_versions = Table(
    "rule_versions",
    metadata,
    Column("partner_id", String(64), ForeignKey("partners.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("effective_from", UTCDateTime, nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON of the RuleVersion
    Column("published_by", String(200), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    CheckConstraint("version > 0", name="rule_version_positive"),
)

# --- members -------------------------------------------------------------------------------------
# A member is one person's wallet and identity (DESIGN §6). The card number is the coalition card
# (16 digits, Luhn), unique and never reused: erasure keeps the number and drops the profile.
members = Table(
    "members",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("card_number", String(16), nullable=True),
    Column("status", String(16), nullable=False, server_default="active"),  # active|merged|erased
    Column("merged_into", String(40), nullable=True),
    Column("birth_date", Date, nullable=True),
    Column("language", String(16), nullable=True),
    # SHA-256 of the one-time activation code printed on a till-enrolment receipt; NULL once
    # the member has claimed the account (or when enrolled online).
    Column("activation_code_hash", String(64), nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("erased_at", UTCDateTime, nullable=True),
    Index("ix_members_card_number", "card_number", unique=True),
    # The members merged into one (the survivor's history includes theirs).
    Index("ix_members_merged_into", "merged_into"),
)

linked_accounts = Table(
    "linked_accounts",
    metadata,
    Column("partner_id", String(64), ForeignKey("partners.id"), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("linked_at", UTCDateTime, nullable=False),
    # How the member consented: enrolment | oauth | link_code | store_code | legacy_import.
    Column("consent_via", String(16), nullable=True),
    # Set when the member unlinks (or is erased or merged away); a closed link reaches nothing.
    Column("closed_at", UTCDateTime, nullable=True),
    Index("ix_linked_accounts_member", "member_id"),
    # One open link per member and partner.
    Index("uq_linked_accounts_open_member", "partner_id", "member_id", unique=True,
          sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
)

# Every link made, closed or imported, with how and by whom. Not append-only on purpose: erasure
# (GDPR art. 17) replaces the customer id with a pseudonym; nothing else ever updates a row.
link_events = Table(
    "link_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("partner_id", String(64), ForeignKey("partners.id"), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("action", String(16), nullable=False),  # linked | unlinked | closed
    # enrolment | oauth | link_code | store_code | legacy_import | member | erasure | merge
    Column("via", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_link_events_member", "member_id", "id"),
)

# One-time link codes a member makes (8 characters, 10 minutes, single use); only hashes kept.
link_codes = Table(
    "link_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("used_by_partner_id", String(64), nullable=True),
    Index("ix_link_codes_member", "member_id"),
)

# Rotating store codes a member shows at a till (QR and digits, about a minute); only the hash of
# the digits is kept. The first partner that presents a code binds it; one consent use (a spend
# or a link) per code. Expired rows are deleted when the member issues the next one.
store_codes = Table(
    "store_codes",
    metadata,
    Column("digits_hash", String(64), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("partner_id", String(64), nullable=True),
    Column("consented_at", UTCDateTime, nullable=True),
    Index("ix_store_codes_member", "member_id"),
)

# Consents as events (append-only): the current state of a purpose is its latest event.
# partner_id NULL means coalition-wide (e.g. use of purchase history for personal offers).
consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("partner_id", String(64), ForeignKey("partners.id"), nullable=True),
    Column("purpose", String(32), nullable=False),  # marketing | purchase_history
    Column("granted", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("via", String(32), nullable=False),  # portal | app | oauth | enrolment | erasure
    CheckConstraint("granted IN (0, 1)", name="consent_granted_flag"),
    Index("ix_consents_member", "member_id", "purpose", "id"),
)

# Portal and app sign-in (argon2id hashes). Erasure deletes the row.
member_credentials = Table(
    "member_credentials",
    metadata,
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("email", String(254), nullable=False),  # normalised: stripped, lower-cased
    Column("password_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("uq_member_credentials_email", "email", unique=True),
)

# Portal sessions: the cookie carries a random token; only its hash is stored.
member_sessions = Table(
    "member_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index("ix_member_sessions_member", "member_id"),
)

# Password resets (decision 036): the emailed link carries a random token; only its hash is
# stored. 30 minutes, single use; using one retires the member's other open ones.
password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Index("ix_password_resets_member", "member_id"),
)

# Authorization codes (RFC 6749 §4.1, PKCE RFC 7636): 60 s, single use; only hashes kept.
# A second use revokes the access token issued from the first (``access_jti``).
oauth_authorization_codes = Table(
    "oauth_authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(80), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("customer_id", String(128), nullable=True),  # the partner's customer to link
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("access_jti", String(80), nullable=True),
)

# Server-held secrets made once per database (pairwise member references, store codes).
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Member-initiated commands that move points (donate, merge), once per (member, idempotency key):
# a replay returns the stored answer. A member's command has no partner of its own, so it is
# keyed here rather than by ``operations``' (partner, key). Written once, never updated.
member_requests = Table(
    "member_requests",
    metadata,
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),  # donate | merge
    Column("request_hash", String(64), nullable=False),
    Column("operation_id", String(40), nullable=True),  # NULL: nothing to post
    Column("result", Text, nullable=False),  # canonical JSON answer
    Column("at", UTCDateTime, nullable=False),
)

# --- the ledger ----------------------------------------------------------------------------------
accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(120), nullable=False, unique=True),
    Column("kind", String(24), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=True),
    Column("partner_id", String(64), ForeignKey("partners.id"), nullable=True),
    # Stored only for member accounts (wallet, held, pending, debt); partner and coalition
    # accounts are derived by aggregation so hot accounts never serialise writers (DESIGN §4).
    Column("balance", BigInteger, nullable=False, server_default="0"),
    CheckConstraint(
        "(kind NOT IN ('wallet', 'held', 'pending') OR balance >= 0)"
        " AND (kind <> 'debt' OR balance <= 0)"
        " AND (kind IN ('wallet', 'held', 'pending', 'debt') OR balance = 0)",
        name="account_balance_sign",
    ),
    # Balance reads select a member's accounts by member id (issue 11: without it, a scan).
    Index("ix_accounts_member", "member_id"),
)

# The operation kinds whose lot movements settlement prices (redemptions, donations, captures
# and the refunds inside returns). ``ix_operations_settled_lots`` holds every operation but
# earns (the bulk of the table), so the report reads these without touching an earn. The
# predicate is one comparison on purpose: an earn writes no entry and pays ~0.1 µs to test it
# (SQLite), where ``kind IN (...)`` cost ~2 µs per insert.
SETTLED_LOT_KINDS = ("capture", "donate", "redeem", "return", "draw_entry")
NOT_EARN_SQL = "kind <> 'earn'"

operations = Table(
    "operations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("partner_id", String(64), ForeignKey("partners.id"), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=True),
    Column("kind", String(24), nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("channel", String(16), nullable=True),
    Column("purchase_id", String(200), nullable=True),
    Column("parent_id", String(40), ForeignKey("operations.id"), nullable=True),
    Column("hold_id", String(40), nullable=True),
    Column("rule_partner_id", String(64), nullable=True),
    Column("rule_version", Integer, nullable=True),
    Column("amount_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("points", BigInteger, nullable=False),  # signed effect on the member's available points
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("result", Text, nullable=False),  # canonical JSON answer, returned again on replay
    UniqueConstraint("partner_id", "idempotency_key", name="uq_operation_idempotency"),
    Index("ix_operations_member", "member_id", "id"),
    Index("ix_operations_partner_purchase", "partner_id", "purchase_id"),
    Index("ix_operations_recorded", "recorded_at"),
    # The daily earn cap sums one member's earns at one partner on one day, and history pages
    # one member's operations at one partner newest first: both bounded by the member's own
    # rows there, never by the partner's or the table's size (issue 11).
    Index("ix_operations_daily_cap", "member_id", "partner_id", "kind", "recorded_at"),
    Index("ix_operations_member_partner", "member_id", "partner_id", "id"),
    Index("ix_operations_settled_lots", "recorded_at",
          sqlite_where=text(NOT_EARN_SQL), postgresql_where=text(NOT_EARN_SQL)),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(40), ForeignKey("operations.id"), nullable=False),
    Column("debit_account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("credit_account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    CheckConstraint("amount > 0", name="transfer_amount_positive"),
    CheckConstraint("debit_account_id <> credit_account_id", name="transfer_distinct_accounts"),
    Index("ix_transfers_operation", "operation_id"),
    Index("ix_transfers_debit", "debit_account_id"),
    Index("ix_transfers_credit", "credit_account_id"),
)

lots = Table(
    "lots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("origin_partner_id", String(64), ForeignKey("partners.id"), nullable=False),
    Column("operation_id", String(40), ForeignKey("operations.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    # `remaining` is an index over lot_movements (points + sum of movements), kept in the same
    # transaction and checked by `verify`; the movements themselves are append-only.
    Column("remaining", BigInteger, nullable=False),
    Column("earned_at", UTCDateTime, nullable=False),
    Column("available_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # 1 while the points wait out the partner's return window on the member's pending account;
    # set to 0 (once) when housekeeping releases them to the wallet.
    Column("pending", Integer, nullable=False, server_default="0"),
    # The absorbed member's lot this one continues after a merge (same origin, earn date,
    # expiry and size): a later return refunds into the lot its spend consumed, found here.
    Column("merged_from", Integer, nullable=True),
    CheckConstraint("points > 0", name="lot_points_positive"),
    CheckConstraint("pending IN (0, 1)", name="lot_pending_flag"),
    CheckConstraint("remaining >= 0 AND remaining <= points", name="lot_remaining_range"),
    Index("ix_lots_member_expiry", "member_id", "expires_at"),
    Index("ix_lots_operation", "operation_id"),  # a return finds its earn's pending lot
    Index("ix_lots_merged_from", "merged_from"),
)

lot_movements = Table(
    "lot_movements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lot_id", Integer, ForeignKey("lots.id"), nullable=False),
    Column("operation_id", String(40), ForeignKey("operations.id"), nullable=False),
    Column("points", BigInteger, nullable=False),  # negative: consumed; positive: restored
    Column("recorded_at", UTCDateTime, nullable=False),
    CheckConstraint("points <> 0", name="lot_movement_nonzero"),
    Index("ix_lot_movements_operation", "operation_id"),
    Index("ix_lot_movements_lot", "lot_id"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("partner_id", String(64), ForeignKey("partners.id"), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("operation_id", String(40), ForeignKey("operations.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("basket_amount_minor", BigInteger, nullable=False),
    Column("purchase_id", String(200), nullable=True),
    Column("status", String(16), nullable=False),  # authorised | captured | voided | expired
    Column("captured_points", BigInteger, nullable=False, server_default="0"),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("points > 0", name="hold_points_positive"),
    CheckConstraint(
        "captured_points >= 0 AND captured_points <= points", name="hold_capture_range"
    ),
    Index("ix_holds_member_status", "member_id", "status"),
)

# --- auth ----------------------------------------------------------------------------------------
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(80), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # partner | finance | admin
    Column("partner_id", String(64), ForeignKey("partners.id"), nullable=True),
    Column("secret_hash", Text, nullable=False),
    Column("allowed_scopes", Text, nullable=False),  # space-separated
    Column("created_at", UTCDateTime, nullable=False),
    Column("rotated_at", UTCDateTime, nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    # Exact-match redirect URIs for the authorization code flow, space-separated ('' = none).
    Column("redirect_uris", Text, nullable=False, server_default=""),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime, nullable=True),  # no longer signs; still verifies
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(80), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=False),
)

# A member's app tokens issued at or before ``tokens_valid_from`` are refused (a password reset
# sets it: decision 036). One row per member (upserted); workers hold the recent rows in memory
# with the revocations (gateway.auth.feed), found by ``ix_member_token_cutoffs_from``.
member_token_cutoffs = Table(
    "member_token_cutoffs",
    metadata,
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("tokens_valid_from", UTCDateTime, nullable=False),
    Index("ix_member_token_cutoffs_from", "tokens_valid_from"),
)

# One row (id 1): a counter bumped in the same transaction as every change to
# ``oauth_clients``, ``revoked_tokens`` or ``member_token_cutoffs``. Workers hold clients,
# revocations and cut-offs in memory and poll this one row to know when to reload them
# (gateway.auth.feed).
auth_changes = Table(
    "auth_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(200), nullable=True),
    Column("detail", Text, nullable=False, server_default="{}"),
)

# --- settlement (gateway.settlement) --------------------------------------------------------------
# A closed period and its snapshot are written once, in one transaction, and never change: both
# tables are append-only, so a closed period cannot be reopened or rewritten, even by hand.
settlement_periods = Table(
    "settlement_periods",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=False),
    Column("closed_by", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    CheckConstraint("start_at < end_at", name="settlement_period_order"),
    UniqueConstraint("start_at", "end_at", name="uq_settlement_period_bounds"),
)

settlement_snapshots = Table(
    "settlement_snapshots",
    metadata,
    Column("period_id", String(40), ForeignKey("settlement_periods.id"), primary_key=True),
    Column("body", Text, nullable=False),  # canonical JSON of the report
    Column("sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Exact per-day sums of the settlement report (gateway.settlement.rollups, decision 016): one
# marker row per UTC day of ``recorded_at`` rolled up (written in the same transaction as its
# sums, so a day is rolled up wholly or not at all), and the day's grouped rows, ``part`` "flow"
# (transfers touching a settled account) or "lot" (lot movements of redemptions). Written once,
# never changed: a wrong row is a bug that ``verify`` reports.
settlement_rollup_days = Table(
    "settlement_rollup_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("rolled_at", UTCDateTime, nullable=False),
    Column("row_count", Integer, nullable=False),
)

settlement_rollups = Table(
    "settlement_rollups",
    metadata,
    Column("day", Date, ForeignKey("settlement_rollup_days.day"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("part", String(4), nullable=False),
    Column("side", BigInteger, nullable=True),  # flow: +id settled debit, -id settled credit
    Column("kind", String(32), nullable=False),
    Column("partner_id", String(64), nullable=False),  # flow: the operation's; lot: redeemer
    Column("origin", String(64), nullable=True),  # lot: the lot's origin partner
    Column("rule_partner_id", String(64), nullable=True),
    Column("rule_version", Integer, nullable=True),
    Column("adjusts", String(40), nullable=True),
    Column("points", BigInteger, nullable=False),
    CheckConstraint("part IN ('flow', 'lot')", name="settlement_rollup_part"),
)

# --- trusted GraphQL documents (gateway.db.documents) ---------------------------------------------
# A partner's operations registered in advance and sent by id (docs/trusted-documents.md). The
# id is the SHA-256 of the text, so a row never needs to change; partner_id "" is a document
# every caller may send (the coalition's own apps).
trusted_documents = Table(
    "trusted_documents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("partner_id", String(64), primary_key=True),
    Column("name", String(200), nullable=True),  # the operation's name, for people reading
    Column("body", Text, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("registered_by", String(200), nullable=False),
)

# --- campaigns (gateway.promotions, issue 12, decision 020) ---------------------------------------
# A campaign's header; its definitions are versions, each immutable once published (the JSON of
# gateway.promotions.codec). Ending or changing a campaign publishes a new version.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),  # a partner id, or "coalition"
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Index("ix_campaigns_owner", "owner"),
)

campaign_versions = Table(
    "campaign_versions",
    metadata,
    Column("campaign_id", String(64), ForeignKey("campaigns.id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("definition", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("published_by", String(200), nullable=False),
    Index("ix_campaign_versions_published", "published_at"),
)

# What a campaign has consumed over its life (every version): the one mutable row per campaign,
# changed in the transaction of the operation that consumes or releases it (a budgeted earn locks
# it, after the member). Not a ledger entry: promotion_awards is the record it sums.
campaign_counters = Table(
    "campaign_counters",
    metadata,
    Column("campaign_id", String(64), ForeignKey("campaigns.id"), primary_key=True),
    Column("points", BigInteger, nullable=False, server_default="0"),
    Column("rewards", BigInteger, nullable=False, server_default="0"),
)

# Every award and its reversal (append-only): which campaign version gave how many points to
# whom in which operation, charged to which funder. A return appends the negative share.
# Indexed for its two readers only (member limits; reports by funder): an earn writes one row
# per campaign applied, so each index is paid for dozens of times per earn (migration 0026).
promotion_awards = Table(
    "promotion_awards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(40), ForeignKey("operations.id"), nullable=False),
    Column("campaign_id", String(64), ForeignKey("campaigns.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("funder", String(64), nullable=False),
    Column("partner_id", String(64), nullable=False),  # where the operation happened
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("points", BigInteger, nullable=False),  # < 0: a reversal
    Column("rewards", Integer, nullable=False),  # 1 applied, -1 reversed, 0 partly reversed
    Column("reward_code", String(64), nullable=True),  # a till reward's code
    Column("recorded_at", UTCDateTime, nullable=False),
    Index("ix_promotion_awards_member", "member_id", "campaign_id", "recorded_at"),
    Index("ix_promotion_awards_funder", "funder", "recorded_at"),
)

# --- p12-money: funders' funding accounts (gateway.promotions.funding, issue 12) ---------------
# One row per funder that has terms (no row: unlimited). Points throughout (docs/funding.md):
# headroom = limit_points + funded_points - (issued_points - reversed_points). The counters move
# in the transaction that issues or reverses the points (one conditional UPDATE: the row lock).
funders = Table(
    "funders",
    metadata,
    Column("funder", String(64), primary_key=True),  # a partner id, or "coalition"
    Column("mode", String(16), nullable=False),  # prepaid | credit
    Column("policy", String(16), nullable=False),  # refuse | alert
    Column("limit_points", BigInteger, nullable=False),  # credit line; 0 when prepaid
    Column("funded_points", BigInteger, nullable=False),  # top-ups / repayments received
    Column("issued_points", BigInteger, nullable=False),
    Column("reversed_points", BigInteger, nullable=False),
    Column("alerts", BigInteger, nullable=False),  # charges let past the headroom (alert)
    Column("updated_at", UTCDateTime, nullable=False),
    # The last charge's outcome: its points, negative when refused (so one UPDATE answers
    # both "is there a row" and "did it fit": gateway.promotions.funding.charge).
    Column("last_charge", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("mode IN ('prepaid', 'credit')", name="ck_funders_mode"),
    CheckConstraint("policy IN ('refuse', 'alert')", name="ck_funders_policy"),
    CheckConstraint("limit_points >= 0 AND funded_points >= 0 AND issued_points >= 0 "
                    "AND reversed_points >= 0", name="ck_funders_points"),
)

# Every change of a funder's terms, every top-up and every alert, with its actor (append-only).
funding_events = Table(
    "funding_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("funder", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # opened | terms | topup | alert
    Column("points", BigInteger, nullable=False),
    Column("detail", Text, nullable=False),  # canonical JSON
    Index("ix_funding_events_funder", "funder", "id"),
)

# --- p13-tiers: qualifying points and segments (issue 12, decision 026) --------------------------
# A member's qualifying points per UTC calendar month (YYYYMM): the base points of their earns at
# every brand, less what returns took back (gateway.promotions.tiers). Upserted in the earn's or
# the return's transaction under the member's lock; a tier read sums at most window_months rows of
# the primary key. A derived counter, not a ledger entry: operations are the record it sums.
tier_progress = Table(
    "tier_progress",
    metadata,
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("month", Integer, primary_key=True, autoincrement=False),
    Column("points", BigInteger, nullable=False),
)

# A partner's segment (gateway.promotions.segments): a rule over members' purchases at the
# coalition's brands, for personal offers (a campaign with InSegment). Its membership is computed
# by `gateway segments refresh` over consenting members only; the partner reads member_count.
segments = Table(
    "segments",
    metadata,
    Column("id", String(64), primary_key=True),  # owner:name
    Column("owner", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("rule", Text, nullable=False),  # canonical JSON (segments.rule_to_json)
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("member_count", BigInteger, nullable=False, server_default="0"),
    Column("refreshed_at", UTCDateTime, nullable=True),
    Index("ix_segments_owner", "owner", "id"),
)

member_segments = Table(
    "member_segments",
    metadata,
    Column("segment_id", String(64), ForeignKey("segments.id"), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Index("ix_member_segments_member", "member_id", "segment_id"),
)

# --- p13-coupons: coupons and referrals (gateway.promotions.coupons/referrals, decision 025) ---
# A partner's coupon codes: only an HMAC of the normalised code is kept (unique per partner).
# ``uses`` is kept current by the earn that redeems it (a conditional UPDATE under the row
# lock) and the full return that restores it; coupon_redemptions is the record it sums.
coupons = Table(
    "coupons",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", String(64), nullable=False),
    Column("campaign_id", String(64), ForeignKey("campaigns.id"), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("code_hint", String(8), nullable=False),  # the code's last 4 characters, for people
    Column("max_uses", Integer, nullable=False),
    Column("per_member_limit", Integer, nullable=True),  # NULL: no limit per member
    Column("expires_at", UTCDateTime, nullable=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=True),  # a personal one
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    CheckConstraint("max_uses > 0 AND uses >= 0 AND uses <= max_uses",
                    name="ck_coupons_uses"),
    Index("uq_coupons_partner_code", "partner_id", "code_hash", unique=True),
    Index("ix_coupons_campaign", "campaign_id"),
)

# Every redemption (uses 1) and every restore on a full return (uses -1, a new row): append-only.
coupon_redemptions = Table(
    "coupon_redemptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("coupon_id", Integer, ForeignKey("coupons.id"), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("operation_id", String(40), nullable=False),  # the earn, or the return restoring it
    Column("uses", Integer, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    CheckConstraint("uses IN (1, -1)", name="ck_coupon_redemptions_uses"),
    Index("ix_coupon_redemptions_member", "member_id", "coupon_id"),
    Index("ix_coupon_redemptions_operation", "operation_id"),
)

# A member's own referral code (made on first ask, never changed).
referral_codes = Table(
    "referral_codes",
    metadata,
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("code", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("uq_referral_codes_code", "code", unique=True),
)

# Who referred whom (one row per referred member); rewarded_operation_id is set once, by the
# earn of the referred member's first qualifying purchase (a conditional UPDATE).
referrals = Table(
    "referrals",
    metadata,
    Column("referred_member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("referrer_member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("via", String(16), nullable=False),  # enrolment | member
    Column("partner_id", String(64), nullable=True),  # the enrolling partner, if any
    Column("rewarded_operation_id", String(40), nullable=True),
    Column("rewarded_at", UTCDateTime, nullable=True),
    Index("ix_referrals_referrer", "referrer_member_id"),
)

# The transactional outbox (issue 13, decision 029): one row per ledger or campaign event,
# written in the transaction of its change. The worker fans undispatched rows out to their
# consumers and stamps dispatched_at (the payload columns never change); the partial index keeps
# its scan bounded by the backlog, never by the table's size.
UNDISPATCHED_SQL = "dispatched_at IS NULL"
outbox = Table(
    "outbox",
    metadata,
    Column("id", String(40), primary_key=True),  # evt_<time-ordered ulid>: the stable event id
    Column("type", String(64), nullable=False),
    Column("partner_id", String(64), nullable=True),  # whose event it is; None: the coalition's
    Column("member_id", String(40), nullable=True),
    Column("operation_id", String(40), nullable=True),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("data", Text, nullable=False),  # canonical JSON payload
    Column("dispatched_at", UTCDateTime, nullable=True),
    Index("ix_outbox_undispatched", "id", sqlite_where=text(UNDISPATCHED_SQL),
          postgresql_where=text(UNDISPATCHED_SQL)),
    Index("ix_outbox_member", "member_id", "id"),
)

# --- p14-notify: member notifications (gateway.notifications, issue 13, decision 031) -----------
# The member's feed: one row per notification. ``event_id`` is what it answers (an outbox event
# id, or a scheduled job's window key such as ``expiring:30:2026-12-23``): unique per member and
# kind, so a redelivered event or a job run twice never notifies twice. ``read_at`` is set once
# by the member; nothing else is ever updated (erasure deletes the member's rows).
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("event_id", String(80), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("data", Text, nullable=False),  # canonical JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("read_at", UTCDateTime, nullable=True),
    Index("uq_notifications_event", "member_id", "kind", "event_id", unique=True),
    Index("ix_notifications_member", "member_id", "id"),  # the feed, newest first
)

# The email queue: one row per notification to email. The sender claims due pending rows
# through the partial index (bounded by the backlog, not the table), sends through the SMTP
# relay (or the development mail folder) and marks them sent, or retries with back-off until
# failed. The address is read at sending time, so an erased member is never emailed.
PENDING_EMAIL_SQL = "status = 'pending'"
notification_emails = Table(
    "notification_emails",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", Integer, ForeignKey("notifications.id"), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("last_error", String(500), nullable=True),
    CheckConstraint("status IN ('pending', 'sent', 'failed')",
                    name="ck_notification_emails_status"),
    Index("uq_notification_emails_notification", "notification_id", unique=True),
    Index("ix_notification_emails_due", "next_attempt_at", "id",
          sqlite_where=text(PENDING_EMAIL_SQL), postgresql_where=text(PENDING_EMAIL_SQL)),
)

# A member's notification preferences (no row: the defaults, email on).
notification_preferences = Table(
    "notification_preferences",
    metadata,
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("email_enabled", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("email_enabled IN (0, 1)", name="ck_notification_preferences_email"),
)

# The last tier a member was told about (no row: the programme's first tier). A tier change is
# notified by the conditional UPDATE that moves it (and counts it), so two workers never both
# notify one change, and the notification's key (``tier:<changes>``) never repeats.
notification_tiers = Table(
    "notification_tiers",
    metadata,
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("tier_id", String(32), nullable=False),
    Column("changes", Integer, nullable=False),  # changes told; the Nth is keyed ``tier:N``
    Column("updated_at", UTCDateTime, nullable=False),
)

# Where each scheduled notification job has got to (``expiring:30``: the last lot, by
# (expires_at, id), whose window it has notified), so a run starts where the last one ended.
notification_jobs = Table(
    "notification_jobs",
    metadata,
    Column("job", String(32), primary_key=True),
    Column("cursor_at", UTCDateTime, nullable=False),
    Column("cursor_id", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The expiring-points job walks lots by expiry through this index (decision 031).
Index("ix_lots_expires_at", lots.c.expires_at, lots.c.id)

# Partner webhooks and the worker's deliveries (issue 13, decision 030). A subscription keeps
# its signing secret (the worker needs it to sign) and, for a day after a rotation, the previous
# one; at most MAX_SUBSCRIPTIONS per partner, so listing them is bounded.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(40), primary_key=True),  # whs_<ulid>
    Column("partner_id", String(64), ForeignKey("partners.id"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("event_types", Text, nullable=False),  # JSON list of types, or ["*"]
    Column("secret", String(128), nullable=False),  # whsec_<base64>
    Column("previous_secret", String(128), nullable=True),
    Column("previous_secret_until", UTCDateTime, nullable=True),
    Column("state", String(16), nullable=False),  # active | disabled
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    CheckConstraint("state IN ('active', 'disabled')", name="ck_webhook_subscriptions_state"),
    Index("ix_webhook_subscriptions_partner", "partner_id", "state"),
)

# One row per (event, consumer): the unit the worker runs at least once. ``consumer`` is
# "webhook:<subscription id>" or an in-process consumer's name. A claim leases the row by moving
# next_attempt_at to the lease's end, so a row whose worker died is simply due again.
DELIVERY_PENDING_SQL = "state = 'pending'"
DELIVERY_DEAD_SQL = "state = 'dead'"
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # dlv_<ulid>
    Column("event_id", String(40), ForeignKey("outbox.id"), nullable=False),
    Column("consumer", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("leased_until", UTCDateTime, nullable=True),
    Column("give_up_at", UTCDateTime, nullable=False),  # dispatch + 24 h (or a replay + 24 h)
    Column("last_status", Integer, nullable=True),  # the receiver's HTTP status, if it answered
    Column("last_error", String(200), nullable=True),  # short, never a secret or a body
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("event_id", "consumer", name="uq_event_deliveries_event_consumer"),
    CheckConstraint("state IN ('pending', 'delivered', 'dead')",
                    name="ck_event_deliveries_state"),
    CheckConstraint("attempts >= 0", name="ck_event_deliveries_attempts"),
    Index("ix_event_deliveries_due", "next_attempt_at", sqlite_where=text(DELIVERY_PENDING_SQL),
          postgresql_where=text(DELIVERY_PENDING_SQL)),
    Index("ix_event_deliveries_consumer", "consumer", "id"),
    Index("ix_event_deliveries_consumer_state", "consumer", "state", "id"),
    # A replay of one consumer's dead letters in a time window (review of issue 13): only dead
    # rows, so it costs nothing when a delivery succeeds.
    Index("ix_event_deliveries_dead", "consumer", "created_at",
          sqlite_where=text(DELIVERY_DEAD_SQL), postgresql_where=text(DELIVERY_DEAD_SQL)),
)

# --- prize draws (issue 13, decision 033) -------------------------------------------------------
# A draw's terms, its secret seed (published at close, committed to by ``commitment`` from the
# start) and, once closed, the frozen entry list's hash. The only mutable table of the draws: its
# status moves once, open -> closed.
draws = Table(
    "draws",
    metadata,
    Column("id", String(40), primary_key=True),  # drw_<time-ordered ulid>
    Column("owner_partner_id", String(64), ForeignKey("partners.id"), nullable=True),  # None: the
    # coalition's
    Column("name", String(200), nullable=False),
    Column("opens_at", UTCDateTime, nullable=False),
    Column("closes_at", UTCDateTime, nullable=False),
    Column("purchase_partners", Text, nullable=True),  # JSON list; None: no purchase entries
    Column("min_spend_minor", BigInteger, nullable=True),
    Column("min_spend_currency", String(3), nullable=True),
    Column("entries_per_purchase", Integer, nullable=True),
    Column("points_per_entry", BigInteger, nullable=True),  # None: entries are not for sale
    Column("max_entries_per_member", Integer, nullable=False),
    Column("one_prize_per_member", Integer, nullable=False),  # 1 or 0
    Column("prizes", Text, nullable=False),  # JSON [{"name": ..., "quantity": ...}], in order
    Column("seed", String(64), nullable=False),  # hex; secret until the draw is closed
    Column("commitment", String(64), nullable=False),  # hex SHA-256 of the seed's bytes
    Column("entrant_key", String(64), nullable=False),  # hex HMAC key; never published
    Column("status", String(16), nullable=False),  # open | closed
    Column("entry_list_hash", String(64), nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    CheckConstraint("status IN ('open', 'closed') AND opens_at < closes_at"
                    " AND max_entries_per_member > 0", name="ck_draws_terms"),
    # A partner's own draws (its list); the open draws a member may enter (status, closes_at).
    Index("ix_draws_owner", "owner_partner_id", "id"),
    Index("ix_draws_status", "status", "closes_at"),
)

# Append-only: every change to a member's entries in a draw is a row (a purchase's entries, a
# return's withdrawal of them as a negative row, entries bought with points). UNIQUE (draw,
# event) makes the events' consumer idempotent.
draw_entries = Table(
    "draw_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("draw_id", String(40), ForeignKey("draws.id"), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("source", String(16), nullable=False),  # purchase | return | points
    Column("event_id", String(40), nullable=True),
    Column("operation_id", String(40), nullable=True),  # the earn (purchase, return) or spend
    Column("amount_minor", BigInteger, nullable=True),  # purchase +amount, return -amount
    Column("entries", Integer, nullable=False),
    Column("points", BigInteger, nullable=False, server_default="0"),  # points spent
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("draw_id", "event_id", name="uq_draw_entries_event"),
    # A member's entries in one draw (the limit check) and the draws they entered (viewer).
    Index("ix_draw_entries_member", "member_id", "draw_id"),
    # A purchase's rows in one draw (a return); every row of a draw (the close).
    Index("ix_draw_entries_draw", "draw_id", "operation_id"),
)

# Written once, at close: the frozen list (entrant pseudonym -> entries) and the winners.
draw_entrants = Table(
    "draw_entrants",
    metadata,
    Column("draw_id", String(40), ForeignKey("draws.id"), primary_key=True),
    Column("entrant", String(64), primary_key=True),  # hex HMAC-SHA256(entrant_key, member id)
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("entries", Integer, nullable=False),
    CheckConstraint("entries > 0", name="ck_draw_entrants_entries"),
)

draw_winners = Table(
    "draw_winners",
    metadata,
    Column("draw_id", String(40), ForeignKey("draws.id"), primary_key=True),
    Column("position", Integer, primary_key=True),  # 0-based prize slot, in draw order
    Column("prize", String(200), nullable=False),
    Column("entrant", String(64), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("ticket", Integer, nullable=False),  # the index drawn among the remaining tickets
    Index("ix_draw_winners_member", "member_id"),
)

# --- challenges, streaks and badges (gateway.challenges, issue 13, decision 032) -------------
# A challenge's current definition (canonical JSON of gateway.challenges.model); every version is
# also in challenge_versions (append-only). Once started, only its end may change (decision 032).
challenges = Table(
    "challenges",
    metadata,
    Column("id", String(64), primary_key=True),  # coalition: id; a partner's: partner:id
    Column("owner", String(64), nullable=False),  # a partner id, or "coalition": the funder
    Column("version", Integer, nullable=False),
    Column("definition", Text, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_challenges_owner", "owner", "id"),
)

challenge_versions = Table(
    "challenge_versions",
    metadata,
    Column("challenge_id", String(64), ForeignKey("challenges.id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("definition", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("published_by", String(200), nullable=False),
)

# One member's progress in one window of one challenge (a month, a rolling span from the first
# qualifying purchase, or a streak of ISO weeks): derived state, recomputed from the window's
# challenge_progress rows by the consumer under the member's lock. completed_at is set while the
# completion stands; bonus_operation_id is that completion's bonus operation.
challenge_windows = Table(
    "challenge_windows",
    metadata,
    Column("challenge_id", String(64), ForeignKey("challenges.id"), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("window_key", String(32), primary_key=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("done", Integer, nullable=False),
    Column("target", Integer, nullable=False),
    Column("completions", Integer, nullable=False, server_default="0"),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("bonus_operation_id", String(40), nullable=True),
    Column("bonus_points", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_challenge_windows_latest", "challenge_id", "member_id", "starts_at"),
    Index("ix_challenge_windows_counts", "challenge_id", "completed_at"),
)

# What each event did to each challenge (append-only): an earn that qualified (+amount) or a
# return of one (-amount), in the window the purchase counted in. UNIQUE (event_id,
# challenge_id): a replayed event finds its row and changes nothing.
challenge_progress = Table(
    "challenge_progress",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False),
    Column("challenge_id", String(64), ForeignKey("challenges.id"), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("window_key", String(32), nullable=False),
    Column("purchase_operation_id", String(40), nullable=False),  # the earn counted
    Column("operation_id", String(40), nullable=False),  # the earn, or the return undoing it
    Column("partner_id", String(64), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),  # the purchase's time
    Column("amount_minor", BigInteger, nullable=False),  # < 0: a return
    Column("currency", String(3), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index("uq_challenge_progress_event", "event_id", "challenge_id", unique=True),
    Index("ix_challenge_progress_window", "challenge_id", "member_id", "window_key"),
    Index("ix_challenge_progress_purchase", "purchase_operation_id"),
)

# A badge per completion; revoked_at is set only if a return undoes that same completion.
# Badges of earlier windows stay whatever later windows do.
member_badges = Table(
    "member_badges",
    metadata,
    Column("member_id", String(40), ForeignKey("members.id"), primary_key=True),
    Column("challenge_id", String(64), ForeignKey("challenges.id"), primary_key=True),
    Column("window_key", String(32), primary_key=True),
    Column("badge", String(32), nullable=False),
    Column("awarded_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index("ix_member_badges_member", "member_id", "badge"),
)

# --- bounded partner counts (issue 13, review 2; decisions 032 and 033) -----------------------
# Kept by the challenges consumer in the transaction that records the progress behind them, so
# the partner's `challenges` query reads a few primary-key rows per challenge, never its history.
# Members with a standing completion of the challenge (one at least).
challenge_totals = Table(
    "challenge_totals",
    metadata,
    Column("challenge_id", String(64), ForeignKey("challenges.id"), primary_key=True),
    Column("members_completed", Integer, nullable=False, server_default="0"),
)

# Windows in progress (progress made, not completed) by the last UTC day each is open (a streak's
# deadline: a week after its last counted week). "In progress now" is the sum over last_day >=
# today: a primary-key range of at most the challenge's window length in days.
challenge_open_days = Table(
    "challenge_open_days",
    metadata,
    Column("challenge_id", String(64), ForeignKey("challenges.id"), primary_key=True),
    Column("last_day", Date, primary_key=True),
    Column("members", Integer, nullable=False, server_default="0"),
)

# A draw's entries and entrants (members holding at least one entry), kept by every write of
# draw_entries in its transaction and set to the frozen list's at close: the partner's draw list
# reads one primary-key row per draw instead of summing its entries.
draw_totals = Table(
    "draw_totals",
    metadata,
    Column("draw_id", String(40), ForeignKey("draws.id"), primary_key=True),
    Column("entries", BigInteger, nullable=False, server_default="0"),
    Column("entrants", Integer, nullable=False, server_default="0"),
)

APPEND_ONLY_TABLES = ("transfers", "lot_movements", "operations", "rule_versions", "audit_log",
                      "settlement_periods", "settlement_snapshots", "consents",
                      "settlement_rollup_days", "settlement_rollups", "campaign_versions",
                      "promotion_awards", "funding_events", "coupon_redemptions", "draw_entries",
                      "draw_entrants", "draw_winners", "challenge_versions", "challenge_progress")
