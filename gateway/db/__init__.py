"""Storage: tables, guards (immutability triggers), engine set-up and the unit of work."""
