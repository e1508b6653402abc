"""Redis implementations of the shared-state backends (see gateway.backends)."""
