"""Sending the queued notification emails (``gateway notify send``): through the configured SMTP
relay (``MailSettings``: host, port, from address, STARTTLS and credentials optional), or, in
development, as .eml files in ``GATEWAY_MAIL_DIR`` (``dev.py serve`` prints where).

Delivery is at least once. A run claims up to ``batch`` due rows (``ix_notification_emails_due``,
the partial index of pending rows: bounded by the backlog) by moving their next attempt a lease
ahead in one short transaction, so a second sender running at the same time skips them; then
sends each and records the outcome. A sender killed mid-batch leaves its rows pending: they are
due again when the lease ends. A failure is retried with exponential back-off (1 minute,
doubling, at most 6 hours) up to ``MAX_ATTEMPTS``, then the row is ``failed``. An email whose
member has no address any more (erased), or has turned email off meanwhile, is ``failed``
without sending, with the reason."""

from __future__ import annotations

import json
import secrets
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, bindparam, select, update

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.db.tables import member_credentials, notification_emails, notifications
from gateway.db.uow import UnitOfWork
from gateway.notifications.model import Kind, is_marketing
from gateway.notifications.store import email_enabled, marketing_allowed
from gateway.settings import MailSettings

BATCH = 100
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
MAIL_DOMAIN = "coalition.example"


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class SmtpTransport:
    """One SMTP connection for a run, opened on the first email."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            s = self.settings
            assert s.smtp_host is not None
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout_s)
            try:
                if s.starttls:
                    smtp.starttls()
                if s.username:
                    smtp.login(s.username, s.password or "")
            except BaseException:
                smtp.close()
                raise
            self._smtp = smtp
        try:
            self._smtp.send_message(message)
        except smtplib.SMTPServerDisconnected:
            self._smtp = None  # reconnect for the next one
            raise

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except smtplib.SMTPException:
                self._smtp.close()
            self._smtp = None


class FolderTransport:
    """Development: every email an .eml file in ``folder`` (open it with any mail reader)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = message["X-Notification-Id"]
        file = (f"notification-{int(str(name)):08d}.eml" if name is not None
                else f"{message['X-Mail-Kind']}-{secrets.token_hex(6)}.eml")
        (self.folder / file).write_bytes(bytes(message))

    def close(self) -> None:
        return None


def transport_for(settings: MailSettings) -> Transport:
    if settings.mail_dir is not None:
        return FolderTransport(settings.mail_dir)
    if settings.smtp_host:
        return SmtpTransport(settings)
    raise InvalidInput("no mail relay is configured: set GATEWAY_SMTP_HOST (or GATEWAY_MAIL_DIR "
                       "in development)", field="GATEWAY_SMTP_HOST")


@dataclass(frozen=True, slots=True)
class SendRun:
    sent: int
    retried: int
    failed: int


# The partial index ix_notification_emails_due (next_attempt_at, id) WHERE pending.
_DUE = (select(notification_emails.c.id, notification_emails.c.next_attempt_at)
        .where(notification_emails.c.status == "pending",
               notification_emails.c.next_attempt_at
               <= bindparam("now", type_=notification_emails.c.next_attempt_at.type))
        .order_by(notification_emails.c.next_attempt_at, notification_emails.c.id)
        .limit(bindparam("limit")))
# Primary keys: the email, its notification, the member's address.
_CONTENT = (select(notification_emails.c.member_id, notification_emails.c.attempts,
                   notification_emails.c.notification_id, notifications.c.title,
                   notifications.c.body, notifications.c.created_at, notifications.c.kind,
                   notifications.c.data, member_credentials.c.email)
            .join(notifications, notifications.c.id == notification_emails.c.notification_id)
            .outerjoin(member_credentials,
                       member_credentials.c.member_id == notification_emails.c.member_id)
            .where(notification_emails.c.id == bindparam("id")))


def send_pending(engine: Engine, clock: Clock, settings: MailSettings, *, batch: int = BATCH,
                 transport: Transport | None = None,
                 progress: Callable[[SendRun], None] | None = None) -> SendRun:
    """Send due emails, batch after batch, until none is due. Returns the counts."""
    if batch < 1:
        raise InvalidInput("batch must be at least 1", field="batch")
    mailer = transport or transport_for(settings)
    sent = retried = failed = 0
    try:
        while True:
            claimed = _claim(engine, clock, batch)
            if not claimed:
                return SendRun(sent, retried, failed)
            for email_id in claimed:
                outcome = _send_one(engine, clock, settings, mailer, email_id)
                sent += outcome == "sent"
                retried += outcome == "retry"
                failed += outcome == "failed"
            if progress:
                progress(SendRun(sent, retried, failed))
    finally:
        mailer.close()


def _claim(engine: Engine, clock: Clock, batch: int) -> list[int]:
    with UnitOfWork(engine) as uow:
        conn, now = uow.conn, clock.now()
        due = conn.execute(_DUE, {"now": now, "limit": batch}).all()
        claimed = []
        for email_id, due_at in due:
            moved = conn.execute(update(notification_emails).where(
                notification_emails.c.id == email_id, notification_emails.c.status == "pending",
                notification_emails.c.next_attempt_at == due_at
            ).values(next_attempt_at=now + LEASE)).rowcount
            if moved == 1:
                claimed.append(int(email_id))
        uow.commit()
    return claimed


def _send_one(engine: Engine, clock: Clock, settings: MailSettings, mailer: Transport,
              email_id: int) -> str:
    with UnitOfWork(engine, write=False) as uow:
        row = uow.conn.execute(_CONTENT, {"id": email_id}).first()
        if row is None:  # erased since it was claimed: nothing left to send
            return "gone"
        wanted = email_enabled(uow.conn, str(row.member_id))
        # A marketing email waits in the queue (a day of retries at most): the consents are
        # checked again now, so one withdrawn meanwhile stops it (decision 031).
        consented = not is_marketing(Kind(row.kind)) or marketing_allowed(
            uow.conn, str(row.member_id), json.loads(row.data).get("partner_id"))
    attempts = int(row.attempts) + 1
    if row.email is None or not wanted or not consented:
        reason = ("no email address" if row.email is None else
                  "email turned off by the member" if not wanted else
                  "marketing consent withdrawn")
        _record(engine, email_id, status="failed", attempts=attempts, at=clock.now(),
                error=reason)
        return "failed"
    try:
        mailer.send(message_of(settings, row.email, int(row.notification_id), row.title,
                               row.body, row.created_at))
    except (OSError, smtplib.SMTPException) as error:
        last = attempts >= MAX_ATTEMPTS
        delay = min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)
        _record(engine, email_id, status="failed" if last else "pending", attempts=attempts,
                at=clock.now(), error=f"{type(error).__name__}: {error}"[:500], retry_in=delay)
        return "failed" if last else "retry"
    _record(engine, email_id, status="sent", attempts=attempts, at=clock.now(), error=None)
    return "sent"


def _record(engine: Engine, email_id: int, *, status: str, attempts: int, at: datetime,
            error: str | None, retry_in: timedelta = timedelta(0)) -> None:
    values: dict[str, object] = {"status": status, "attempts": attempts, "last_error": error,
                                 "next_attempt_at": at + retry_in}
    if status == "sent":
        values["sent_at"] = at
    with UnitOfWork(engine) as uow:
        uow.conn.execute(update(notification_emails)
                         .where(notification_emails.c.id == email_id).values(**values))
        uow.commit()


def message_of(settings: MailSettings, to: str, notification_id: int, title: str, body: str,
               created_at: datetime) -> EmailMessage:
    message = _message(settings, to, title, created_at, f"notification-{notification_id}",
                       f"{body}\n\n--\nCoalition rewards. You can turn these emails off, and "
                       "choose which offers you get, in the member portal (Notifications, "
                       "Consents).\n")
    message["X-Notification-Id"] = str(notification_id)
    return message


def _message(settings: MailSettings, to: str, subject: str, at: datetime, kind: str,
             body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(kind, domain=MAIL_DOMAIN)
    message.set_content(body)
    return message


def send_one(settings: MailSettings, to: str, subject: str, body: str, kind: str,
             at: datetime) -> None:
    """Send one email now, not through the queue: a message that must not be stored (a
    password reset link). Raises what the transport raises; the caller decides."""
    message = _message(settings, to, subject, at, kind, body)
    message["X-Mail-Kind"] = kind
    transport = transport_for(settings)
    try:
        transport.send(message)
    finally:
        transport.close()
