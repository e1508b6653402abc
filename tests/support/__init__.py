"""Shared test harness: a real gateway on a real SQLite file, real OAuth tokens, GraphQL over ASGI."""
