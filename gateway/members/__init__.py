"""Members and their linked accounts at partners (DESIGN §6)."""
