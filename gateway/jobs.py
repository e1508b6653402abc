"""Batch jobs an operator runs on a schedule. The expiry job is the ledger's own
(:mod:`gateway.ledger.expiry`); this module names the jobs for the CLI."""

from __future__ import annotations

from gateway.ledger.expiry import run_expiry

__all__ = ["run_expiry"]
