"""Benchmarks of issue 5: each figure a ratio against a baseline measured in the same run.

Run them all with ``.venv/bin/python -m benchmarks`` (see ``benchmarks/run_all.py`` and
docs/benchmarks.md); ``benchmarks/settlement.py`` is the separate settlement-report benchmark."""
