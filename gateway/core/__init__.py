"""Values every layer shares: money and rounding, ids, the clock, the principal, the error tree."""
