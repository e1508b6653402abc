"""Shared test harness: the real app on real SQLite, real tokens, GraphQL over ASGI."""
