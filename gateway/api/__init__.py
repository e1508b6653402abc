"""The GraphQL transport: parse input, build a command, call a service, map result or error.

No business rule, SQL or arithmetic on points lives here (STYLE rule 1)."""
