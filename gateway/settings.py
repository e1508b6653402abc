"""One ``Settings`` object, built once from the environment, with embedded defaults.

Nothing else in the code reads ``os.environ``. The defaults run the gateway on a local SQLite
file with the demo partners and no external servers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_CATALOG = Path(__file__).resolve().parent.parent / "partners" / "catalog"


@dataclass(frozen=True)
class Limits:
    """What one request to ``/graphql`` may ask for. Each limit rejects with a message naming it.

    ======================  =========  ==========================================================
    limit                   default    enforced by, and what the client sees
    ======================  =========  ==========================================================
    max_depth               10         ``QueryDepthLimiter``: "'<op>' exceeds maximum operation
                                       depth of 10". The deepest valid query today is 6 deep.
    max_tokens              2000       ``MaxTokensLimiter``: "Document contains more than 2000
                                       tokens"; parsing stops there (a comment is a token).
    max_aliases             15         ``MaxAliasesLimiter``, counted through fragments (a
                                       fragment spread twice counts twice): "16 aliases found".
    max_body_bytes          65536      the view, before GraphQL: HTTP 413 ``BODY_TOO_LARGE``,
                                       by Content-Length or by counting a chunked body.
    max_page_size           100        ``first`` of every connection; the resolvers hold it as
                                       ``gateway.api.members.MAX_PAGE`` (a test keeps them equal).
    max_list_items          100        list inputs (``lines``); ``gateway.api.points.MAX_LINES``,
                                       answered as ``InvalidInputError`` with ``field: "lines"``.
    allow_batching          False      a JSON array body is HTTP 400 ``BAD_REQUEST`` unless on;
                                       when on, a batch counts as one request for the rate limit.
    max_batch_operations    10         operations in one batch when batching is on (400 above).
    rate_limit_per_minute   600        per OAuth client, GCRA with a burst of a tenth of a
                                       minute: HTTP 429 ``RATE_LIMITED`` with ``Retry-After``.
    rate_limit_burst        None       requests admitted at once; None is a tenth of a minute's
                                       allowance (60 at the default rate).
    ======================  =========  ==========================================================

    Each is read from ``GATEWAY_<NAME>`` (upper case) by ``Settings.from_env``.

    Not limits but set with them by ``Settings.production``: introspection and the
    "Did you mean ...?" hints of validation errors are off in production, on otherwise.
    Unexpected exceptions are always masked as "Unexpected error." (and logged)."""

    max_depth: int = 10
    max_tokens: int = 2000
    max_aliases: int = 15
    max_body_bytes: int = 64 * 1024
    max_page_size: int = 100
    max_list_items: int = 100
    allow_batching: bool = False
    max_batch_operations: int = 10
    rate_limit_per_minute: int = 600
    rate_limit_burst: int | None = None  # None: a tenth of a minute's allowance


@dataclass(frozen=True)
class MailSettings:
    """Where member notification emails go: an SMTP relay, or a folder of .eml files."""

    smtp_host: str | None = None
    smtp_port: int = 587
    from_address: str = "Coalition rewards <rewards@coalition.example>"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    mail_dir: Path | None = None  # development: write .eml files here instead of sending
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MailSettings:
        folder = env.get("GATEWAY_MAIL_DIR")
        return cls(smtp_host=env.get("GATEWAY_SMTP_HOST") or None,
                   smtp_port=int(env.get("GATEWAY_SMTP_PORT", cls.smtp_port)),
                   from_address=env.get("GATEWAY_SMTP_FROM") or cls.from_address,
                   starttls=env.get("GATEWAY_SMTP_STARTTLS", "0") == "1",
                   username=env.get("GATEWAY_SMTP_USERNAME") or None,
                   password=env.get("GATEWAY_SMTP_PASSWORD") or None,
                   mail_dir=Path(folder) if folder else None)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/gateway.db"
    redis_url: str | None = None
    catalog_dir: Path = DEFAULT_CATALOG
    issuer: str = "http://127.0.0.1:8000"
    # True when GATEWAY_ISSUER was set. ``gateway serve`` otherwise derives the issuer from
    # --host/--port (development) or refuses to start (production): see ``issuer_for``.
    issuer_configured: bool = False
    audience: str = "coalition-gateway"
    token_ttl_seconds: int = 600
    production: bool = False
    demo: bool = False
    settlement_currency: str = "EUR"
    limits: Limits = field(default_factory=Limits)
    # Production backends (issue 5). Keys in Redis start with ``redis_prefix`` so several
    # gateways (or test runs) can share one server. ``redis_failure_mode`` is what rate limits
    # do while Redis is unreachable: "open" admits the request, "closed" answers 503. Points
    # never depend on Redis either way (the database decides idempotency and balances).
    redis_prefix: str = "gw:"
    redis_failure_mode: str = "open"
    workers: int = 1
    log_json: bool = True
    # GATEWAY_METRICS_TOKEN: when set, GET /metrics needs ``Authorization: Bearer <token>``.
    # Unset (the default) /metrics is open: it belongs on the internal network only.
    metrics_token: str | None = None
    # GATEWAY_TRUSTED_DOCUMENTS: "allow" runs any GraphQL document, registered or not (the
    # default, in development and production alike); "only" runs registered documents alone
    # (sent by id, or as a text whose SHA-256 is registered): docs/trusted-documents.md.
    trusted_documents: str = "allow"
    # Member notification emails (docs/notifications.md): ``gateway notify send`` sends them
    # through this SMTP relay (GATEWAY_SMTP_HOST, _PORT, _FROM, _STARTTLS=1, _USERNAME,
    # _PASSWORD). GATEWAY_MAIL_DIR, when set, writes each email there as an .eml file instead
    # (development: ``dev.py serve`` sets it and prints where). Neither set: emails wait.
    mail: MailSettings = field(default_factory=MailSettings)

    @property
    def introspection_enabled(self) -> bool:
        return not self.production

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        burst = env.get("GATEWAY_RATE_LIMIT_BURST")
        limits = Limits(
            max_depth=int(env.get("GATEWAY_MAX_DEPTH", Limits.max_depth)),
            max_tokens=int(env.get("GATEWAY_MAX_TOKENS", Limits.max_tokens)),
            max_aliases=int(env.get("GATEWAY_MAX_ALIASES", Limits.max_aliases)),
            max_body_bytes=int(env.get("GATEWAY_MAX_BODY_BYTES", Limits.max_body_bytes)),
            max_page_size=int(env.get("GATEWAY_MAX_PAGE_SIZE", Limits.max_page_size)),
            max_list_items=int(env.get("GATEWAY_MAX_LIST_ITEMS", Limits.max_list_items)),
            rate_limit_per_minute=int(
                env.get("GATEWAY_RATE_LIMIT_PER_MINUTE", Limits.rate_limit_per_minute)
            ),
            rate_limit_burst=int(burst) if burst else None,
            allow_batching=env.get("GATEWAY_ALLOW_BATCHING", "0") == "1",
        )
        failure_mode = env.get("GATEWAY_REDIS_FAILURE_MODE", "open")
        if failure_mode not in ("open", "closed"):
            raise ValueError("GATEWAY_REDIS_FAILURE_MODE must be 'open' or 'closed', "
                             f"not {failure_mode!r}")
        return cls(
            database_url=env.get("DATABASE_URL", defaults.database_url),
            redis_url=env.get("REDIS_URL") or None,
            catalog_dir=Path(env.get("GATEWAY_CATALOG_DIR", str(defaults.catalog_dir))),
            issuer=env.get("GATEWAY_ISSUER") or defaults.issuer,
            issuer_configured=bool(env.get("GATEWAY_ISSUER")),
            audience=env.get("GATEWAY_AUDIENCE", defaults.audience),
            token_ttl_seconds=int(env.get("GATEWAY_TOKEN_TTL_SECONDS", defaults.token_ttl_seconds)),
            production=env.get("GATEWAY_ENV", "development") == "production",
            settlement_currency=env.get("GATEWAY_SETTLEMENT_CURRENCY", "EUR"),
            limits=limits,
            redis_prefix=env.get("GATEWAY_REDIS_PREFIX", defaults.redis_prefix),
            redis_failure_mode=failure_mode,
            workers=int(env.get("GATEWAY_WORKERS", defaults.workers)),
            log_json=env.get("GATEWAY_LOG_FORMAT", "json") == "json",
            metrics_token=env.get("GATEWAY_METRICS_TOKEN") or None,
            trusted_documents=_trusted_documents(env.get("GATEWAY_TRUSTED_DOCUMENTS", "allow")),
            mail=MailSettings.from_env(env),
        )


class ServingRefused(ValueError):
    """``gateway serve`` must not start with these settings; the message says what to set."""


def serving_settings(settings: Settings, host: str, port: int) -> Settings:
    """The settings ``gateway serve --host H --port P`` runs with.

    The issuer names the server actually listening: GATEWAY_ISSUER when set (TLS usually ends
    at a proxy, so only the operator knows the public URL), else ``http://H:P`` in development.
    Production refuses to start without an explicit issuer (tokens would name a URL nobody
    serves) and without GATEWAY_METRICS_TOKEN (/metrics would be open to the internet)."""
    problems = []
    if settings.production and not settings.issuer_configured:
        problems.append("GATEWAY_ISSUER must be set in production (the public URL of this "
                        "gateway, e.g. https://gateway.example.com)")
    if settings.production and not settings.metrics_token:
        problems.append("GATEWAY_METRICS_TOKEN must be set in production (GET /metrics then "
                        "needs 'Authorization: Bearer <token>')")
    if problems:
        raise ServingRefused("; ".join(problems))
    if settings.issuer_configured:
        return settings
    shown = f"[{host}]" if ":" in host else host
    return replace(settings, issuer=f"http://{shown}:{port}")


def _trusted_documents(mode: str) -> str:
    if mode not in ("allow", "only"):
        raise ValueError(f"GATEWAY_TRUSTED_DOCUMENTS must be 'allow' or 'only', not {mode!r}")
    return mode
