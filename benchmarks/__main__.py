"""``python -m benchmarks`` runs every benchmark and prints the table (see run_all.py)."""

from benchmarks.run_all import main

raise SystemExit(main())
