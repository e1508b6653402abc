"""The campaigns in force, compiled once per set of published versions, cached in memory.

Like the :class:`gateway.rules.store.RuleBook`: the compiled :class:`CampaignSet` is rebuilt
only when ``promotions.repository.version_stamp`` changes (checked at most every
``refresh_s`` seconds), so a version published from one process reaches every worker without a
restart, and an earn with no campaign in force pays one dictionary-free tuple scan."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from sqlalchemy import Engine

from gateway.db.uow import UnitOfWork
from gateway.ledger.runner import leave_loop_for_io
from gateway.promotions import engine as promotions_engine
from gateway.promotions import repository
from gateway.promotions.engine import CampaignSet, CompiledCampaign
from gateway.promotions.model import Trigger


class CampaignBook:
    """The compiled campaigns; implements ``gateway.ledger.context.CampaignSource``."""

    def __init__(self, engine: Engine, *, refresh_s: float = 2.0) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp = -1
        self.compiled: CampaignSet = promotions_engine.compile_campaigns(())
        self.compilations = 0  # how many times a version set was compiled (tests, metrics)
        self.reload()

    def reload(self) -> None:
        """Compile again if the stored versions changed since the last compilation."""
        with self._lock, UnitOfWork(self._engine, write=False) as uow:
            stamp = repository.version_stamp(uow.conn)
            if stamp == self._stamp:
                self._checked = time.monotonic()
                return
            published = repository.load_published(uow.conn)
            self.compiled = promotions_engine.compile_campaigns(published)
            self.compilations += 1
            self._stamp = stamp
            self._checked = time.monotonic()

    def _fresh(self) -> CampaignSet:
        if time.monotonic() - self._checked > self._refresh_s:
            # A database read: a command on the event loop goes to a thread for it (decision 012).
            leave_loop_for_io()
            self.reload()
        return self.compiled

    def candidates(self, partner_id: str, channel: str, at: datetime,
                   trigger: Trigger = Trigger.PURCHASE) -> tuple[CompiledCampaign, ...]:
        return self._fresh().candidates(partner_id, channel, at, trigger)
