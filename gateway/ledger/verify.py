"""``verify``: prove the stored state agrees with the append-only history.

Checks, each an aggregate in SQL (streams, never loads the ledger into memory):
1. every stored balance equals its credits minus its debits (guarantee 3);
2. all transfers sum to zero over all accounts (guarantee 1);
3. no wallet, held or pending balance below zero; no debt above zero (guarantee 4);
4. every lot's ``remaining`` equals its points plus its movements;
5. every wallet (pending balance) equals the remaining points of its available (pending)
   lots; every held balance equals the points of its open holds;
6. (``extra``) checks of the layers above, e.g. settlement's stored day rollups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from gateway.db.uow import UnitOfWork

_CHECKS: tuple[tuple[str, str], ...] = (
    (
        "stored balance differs from its transfers",
        """
        SELECT a.code, a.balance, COALESCE(c.total, 0) - COALESCE(d.total, 0)
        FROM accounts a
        LEFT JOIN (SELECT credit_account_id AS id, SUM(amount) AS total FROM transfers
                   GROUP BY credit_account_id) c ON c.id = a.id
        LEFT JOIN (SELECT debit_account_id AS id, SUM(amount) AS total FROM transfers
                   GROUP BY debit_account_id) d ON d.id = a.id
        WHERE a.kind IN ('wallet', 'held', 'pending', 'debt')
          AND a.balance <> COALESCE(c.total, 0) - COALESCE(d.total, 0)
        """,
    ),
    (
        # Stored balances (member accounts) plus derived ones (partner and coalition accounts,
        # credits minus debits) must sum to zero: a stored balance that drifted breaks it.
        "balances do not sum to zero",
        """
        SELECT 'all accounts', COALESCE(SUM(b.balance), 0), 0 FROM (
          SELECT a.balance AS balance FROM accounts a
          WHERE a.kind IN ('wallet', 'held', 'pending', 'debt')
          UNION ALL
          SELECT COALESCE(c.total, 0) - COALESCE(d.total, 0) FROM accounts a
          LEFT JOIN (SELECT credit_account_id AS id, SUM(amount) AS total FROM transfers
                     GROUP BY credit_account_id) c ON c.id = a.id
          LEFT JOIN (SELECT debit_account_id AS id, SUM(amount) AS total FROM transfers
                     GROUP BY debit_account_id) d ON d.id = a.id
          WHERE a.kind NOT IN ('wallet', 'held', 'pending', 'debt')) b
        HAVING COALESCE(SUM(b.balance), 0) <> 0
        """,
    ),
    (
        "balance on the wrong side of zero",
        """
        SELECT code, balance, 0 FROM accounts
        WHERE (kind IN ('wallet', 'held', 'pending') AND balance < 0)
           OR (kind = 'debt' AND balance > 0)
        """,
    ),
    (
        "lot remaining differs from its movements",
        """
        SELECT 'lot ' || CAST(l.id AS VARCHAR), l.remaining, l.points + COALESCE(m.total, 0)
        FROM lots l LEFT JOIN (SELECT lot_id, SUM(points) AS total FROM lot_movements
                               GROUP BY lot_id) m ON m.lot_id = l.id
        WHERE l.remaining <> l.points + COALESCE(m.total, 0)
        """,
    ),
    (
        "wallet or pending balance differs from its lots",
        """
        SELECT a.code, a.balance, COALESCE(l.total, 0)
        FROM accounts a LEFT JOIN (SELECT member_id, pending, SUM(remaining) AS total FROM lots
                                   GROUP BY member_id, pending) l
             ON l.member_id = a.member_id AND l.pending = CASE a.kind WHEN 'wallet' THEN 0
                                                                      ELSE 1 END
        WHERE a.kind IN ('wallet', 'pending') AND a.balance <> COALESCE(l.total, 0)
        """,
    ),
    (
        "held balance differs from open holds",
        """
        SELECT a.code, a.balance, COALESCE(h.total, 0)
        FROM accounts a LEFT JOIN (SELECT member_id, SUM(points) AS total FROM holds
                                   WHERE status = 'authorised' GROUP BY member_id) h
             ON h.member_id = a.member_id
        WHERE a.kind = 'held' AND a.balance <> COALESCE(h.total, 0)
        """,
    ),
)


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    checks: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


# A check from a layer above the ledger (it may not be imported here): the engine in, one
# problem per line out. ``gateway verify`` passes settlement's (stored day rollups vs rows).
ExtraCheck = Callable[[Engine], Iterable[str]]


def verify_ledger(engine: Engine, extra: Iterable[ExtraCheck] = ()) -> VerifyReport:
    report = VerifyReport()
    with UnitOfWork(engine, write=False) as uow:
        for title, sql in _CHECKS:
            report.checks += 1
            for subject, stored, expected in uow.conn.execute(text(sql)):
                report.problems.append(f"{title}: {subject}: stored {stored}, expected {expected}")
    for check in extra:
        report.checks += 1
        report.problems.extend(check(engine))
    return report
