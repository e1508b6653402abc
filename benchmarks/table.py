"""The results table: one row per figure, printed, and written as JSON and Markdown."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    benchmark: str
    backend: str
    metric: str
    value: float
    baseline: float | None
    target: str  # e.g. ">= 0.35x", "<= 3x p50", "= 0"; "" for a figure with no target
    met: bool | None  # None: no target
    unit: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


def ratio_row(benchmark: str, backend: str, metric: str, value: float, baseline: float,
              *, at_least: float | None = None, at_most: float | None = None,
              unit: str = "", note: str = "") -> Row:
    ratio = value / baseline if baseline else float("nan")  # nan: never meets a target
    target, met = "", None
    if at_least is not None:
        target, met = f">= {at_least:g}x", value > 0 and ratio >= at_least
    elif at_most is not None:
        target, met = f"<= {at_most:g}x", value > 0 and ratio <= at_most
    return Row(benchmark, backend, metric, value, baseline, target, met, unit, note)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


HEADER = ("benchmark", "backend", "metric", "value", "baseline", "ratio", "target", "met?")


def cells(row: Row) -> tuple[str, ...]:
    ratio = row.ratio
    met = "-" if row.met is None else ("yes" if row.met else "NO")
    unit = f" {row.unit}" if row.unit else ""
    return (row.benchmark, row.backend, row.metric, _num(row.value) + unit,
            _num(row.baseline) + (unit if row.baseline is not None else ""),
            "-" if ratio is None else f"{ratio:.2f}x", row.target or "-", met)


def render_text(rows: list[Row]) -> str:
    table = [HEADER, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[Row], meta: dict[str, object]) -> str:
    out = ["# Benchmark results", "",
           ", ".join(f"{k}: {v}" for k, v in meta.items()), "",
           "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    notes = [f"- {r.benchmark} / {r.backend} / {r.metric}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "Notes:", *notes]
    return "\n".join(out) + "\n"


def write(rows: list[Row], meta: dict[str, object], stem: str = "latest",
          directory: Path = RESULTS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {platform.python_implementation()} "
                       f"{platform.python_version()}", **meta}
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    data = {"meta": meta, "rows": [{**asdict(r), "ratio": r.ratio} for r in rows]}
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path.write_text(render_markdown(rows, meta))
    return [json_path, md_path]
