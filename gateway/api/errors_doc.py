"""``docs/errors.md``: every error code each operation can answer, and when, built from the code.

A partner or finance developer should learn the API's failures from the docs alone. The table is
generated, not written: for each root field whose result is a union, each error type the union
declares with the codes the code answers as that type (``errors._BY_DOMAIN``, the one map,
settlement's error types included). ``WHEN`` says when each code happens; a test keeps the file
equal to :func:`render`, and fails when a new code has no ``WHEN`` line or a new error type no
codes. Regenerate with ``gateway errors-doc > docs/errors.md``.
"""

from __future__ import annotations

from graphql import GraphQLObjectType, GraphQLSchema, GraphQLUnionType, get_named_type

from gateway.api import errors as e
from gateway.api.schema import build_schema
from gateway.core.errors import ErrorCode

WHEN: dict[str, str] = {
    ErrorCode.INVALID_INPUT: "an argument is malformed, out of range or missing; `field` names "
    "it",
    ErrorCode.INVALID_AMOUNT: "points or money are zero, negative, too large, or below a "
    "minimum",
    ErrorCode.CURRENCY_MISMATCH: "money is not in the partner's currency (`expected`, `got`)",
    ErrorCode.NOT_FOUND: "the thing named does not exist, or belongs to another partner (the "
    "two look alike)",
    ErrorCode.UNKNOWN_MEMBER: "no member is linked to this customer id, card or store code here",
    ErrorCode.CONFLICT: "the request conflicts with the current state",
    ErrorCode.ALREADY_LINKED: "the customer id is linked to a member already",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "the idempotency key was used before for a different "
    "request (a replay of the same request answers the first answer instead)",
    ErrorCode.HOLD_EXPIRED: "the hold's authorisation expired before the capture",
    ErrorCode.HOLD_ALREADY_SETTLED: "the hold was captured or voided already",
    ErrorCode.PURCHASE_ALREADY_RECORDED: "this purchase id earned points already",
    ErrorCode.REJECTED: "a business rule refuses the request",
    ErrorCode.INSUFFICIENT_POINTS: "the member's available points are fewer than requested "
    "(`requested`, `available`)",
    ErrorCode.CAPTURE_EXCEEDS_HOLD: "a capture asks for more points than the hold holds "
    "(`requested`, `held`)",
    ErrorCode.RULE_NOT_IN_FORCE: "no rule version of the partner covers the time, or the "
    "partner does not issue points",
    ErrorCode.CAP_EXCEEDED: "a per-transaction or daily cap leaves nothing to post (`cap`)",
    ErrorCode.REDEMPTION_NOT_ACCEPTED: "the partner does not accept points",
    ErrorCode.NOTHING_TO_RETURN: "the purchase is fully returned already",
    ErrorCode.CONSENT_REQUIRED: "spending needs the member's consent (a consented link or a "
    "store code); a card number may earn, never spend",
    ErrorCode.FORBIDDEN: "the token lacks the scope the field needs (`scope`)",
    ErrorCode.RATE_LIMITED: "the client's rate limit is spent (`retryAfterSeconds`)",
    ErrorCode.PERIOD_CLOSED: "the settlement period overlaps one closed already",
    ErrorCode.SETTLEMENT_UNBALANCED: "the settlement report does not balance; nothing is closed",
    ErrorCode.STATEMENT_MALFORMED: "a line of the partner statement cannot be read; `field` "
    "names it",
    ErrorCode.FUNDING_LIMIT_REACHED: "the campaign's funder has no funding left for these bonus "
    "points (`funder`, `leftPoints`); nothing was posted (docs/funding.md)",
    ErrorCode.CAMPAIGN_EXISTS: "createCampaign with an id you used for another definition (the "
    "same definition again answers the stored version 1); `field` is `id`",
    ErrorCode.REFERRAL_REFUSED: "no member has this referral code (`field`: `referralCode`); "
    "nothing was recorded (an enrolment with it is not made)",
    ErrorCode.SELF_REFERRAL: "the referral code is the member's own, or that of an account "
    "merged with theirs; nothing was recorded",
    ErrorCode.ALREADY_REFERRED: "the member was referred already (once per member); nothing "
    "was recorded",
    ErrorCode.DRAW_NOT_OPEN: "enterDraw before the draw's opensAt (`field`: `drawId`); no points "
    "moved",
    ErrorCode.DRAW_CLOSED: "enterDraw at or after the draw's closesAt, or once it is closed "
    "(`field`: `drawId`); no points moved",
    ErrorCode.DRAW_ENTRY_LIMIT: "enterDraw for more entries than the per-member limit leaves "
    "(`limit`, `held`, `requested`; `field`: `entries`); no points moved",
    ErrorCode.DRAW_STILL_OPEN: "closeDraw before the draw's closesAt; nothing changed",
    ErrorCode.CHALLENGE_STARTED: "defineChallenge with a changed definition of a challenge "
    "that has started (docs/challenges.md); nothing was changed",
}

# Answers before any GraphQL runs (the HTTP status is the real answer; gql and Apollo clients
# surface only the body, so they branch on ``errors[0].extensions.code``).
TRANSPORT: list[tuple[int, str, str]] = [
    (400, "BAD_REQUEST", "the body is not a GraphQL request (not JSON, not UTF-8, no query)"),
    (400, "PERSISTED_QUERY_NOT_FOUND", "no trusted document with that `documentId` (or "
     "`persistedQuery.sha256Hash`) is registered for you (docs/trusted-documents.md)"),
    (400, "PERSISTED_QUERY_NOT_IN_LIST", "this gateway runs registered documents only "
     "(`GATEWAY_TRUSTED_DOCUMENTS=only`) and the text sent is not one"),
    (400, "PERSISTED_QUERY_HASH_MISMATCH", "a text and a document id were sent, and the id is "
     "not the text's SHA-256"),
    (401, "UNAUTHENTICATED", "no bearer token, or it is expired, revoked, malformed or for "
     "another audience; `WWW-Authenticate` says which. Get a new token and retry once"),
    (405, "METHOD_NOT_ALLOWED", "not a POST"),
    (413, "BODY_TOO_LARGE", "the body is over the size limit"),
    (415, "UNSUPPORTED_MEDIA_TYPE", "the body is not `application/json`"),
    (429, "RATE_LIMITED", "the client's request budget is spent; wait `Retry-After` seconds "
     "(also in the message) and retry the same request with the same idempotency key"),
    (503, "RATE_LIMITER_UNAVAILABLE", "the shared rate limiter is down and limits fail closed; "
     "nothing was done; retry after `Retry-After`"),
]


# Error types a union keeps only so that old clients' fragments still validate.
KEPT_FOR_OLD_CLIENTS = {("captureRedemption", "InsufficientPointsError")}

# The OAuth endpoints answer RFC 6749 §5.2 errors: ``{"error": ..., "error_description": ...}``.
OAUTH: list[tuple[int, str, str]] = [
    (400, "invalid_request", "a parameter is missing, repeated or malformed, or the request "
     "uses two client authentication methods (HTTP Basic and `client_secret` in the body)"),
    (400, "invalid_scope", "none of the requested scopes exists or is allowed for the client"),
    (400, "unsupported_grant_type", "not `client_credentials` or `authorization_code`"),
    (400, "invalid_grant", "the authorization code is unknown, used, expired, or fails PKCE"),
    (401, "invalid_client", "client authentication failed (unknown, disabled or wrong secret: "
     "one answer for all, at one cost)"),
    (429, "too_many_requests", "the client id's or the source address's budget is spent "
     "(refused authentications spend it five times faster); wait `Retry-After` seconds"),
    (503, "temporarily_unavailable", "the shared rate limiter is down and limits fail closed"),
]


def codes_by_type() -> dict[str, list[str]]:
    """Error type name -> the codes answered as that type."""
    found: dict[str, set[str]] = {}
    for domain_class, kind in e._BY_DOMAIN.items():
        found.setdefault(kind.__name__, set()).add(str(domain_class.code))
    return {name: sorted(codes) for name, codes in found.items()}


def _operations(schema: GraphQLSchema) -> list[tuple[str, str, GraphQLUnionType]]:
    roots = [("query", schema.query_type), ("mutation", schema.mutation_type)]
    found = []
    for kind, root in roots:
        if not isinstance(root, GraphQLObjectType):
            continue
        for name, field in sorted(root.fields.items()):
            named = get_named_type(field.type)
            if isinstance(named, GraphQLUnionType):
                found.append((kind, name, named))
    return found


def render() -> str:
    schema: GraphQLSchema = build_schema()._schema
    codes = codes_by_type()
    error_interface = schema.get_type("Error")
    lines = [
        "# Errors, per operation",
        "",
        "Generated by `gateway errors-doc > docs/errors.md` from the code "
        "(gateway/api/errors_doc.py); a test keeps this file equal to it. Do not edit by hand.",
        "",
        "Every mutation, and every query with a result union, answers an expected failure as a "
        "typed member of its union implementing `Error { code message field }`, with HTTP 200. "
        "Branch on `code` (stable); `message` says the cause for a person and `field` names the "
        "input at fault. A rejected call changed nothing. Fields without a union raise a "
        "GraphQL error whose `extensions` carry the same `code` and `field`.",
        "",
        "## Before GraphQL runs: branch on `errors[0].extensions.code`",
        "",
        "gql and Apollo clients raise these as transport errors and may drop the HTTP status; "
        "the body is always `{\"errors\": [{\"message\": ..., \"extensions\": {\"code\": ...}}]}`.",
        "",
        "| HTTP | `extensions.code` | when |",
        "| --- | --- | --- |",
        *(f"| {status} | `{code}` | {when} |" for status, code, when in TRANSPORT),
        "",
        "## OAuth endpoints (`/oauth/token`, `/oauth/introspect`, `/oauth/revoke`)",
        "",
        "| HTTP | `error` | when |",
        "| --- | --- | --- |",
        *(f"| {status} | `{code}` | {when} |" for status, code, when in OAUTH),
        "",
        "## Codes by operation",
        "",
        "| operation | error type | code | when |",
        "| --- | --- | --- | --- |",
    ]
    for kind, name, union in _operations(schema):
        for member in sorted(union.types, key=lambda t: t.name):
            if error_interface not in member.interfaces:
                continue
            if (name, member.name) in KEPT_FOR_OLD_CLIENTS:
                lines.append(f"| {kind} `{name}` | `{member.name}` | - | never answered; kept "
                             "in the union so old clients' fragments still validate |")
                continue
            for code in codes[member.name]:
                lines.append(f"| {kind} `{name}` | `{member.name}` | `{code}` | {WHEN[code]} |")
    lines.append("")
    return "\n".join(lines)
