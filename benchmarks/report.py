"""Shared output of the benchmarks: Markdown tables on stdout (pasteable into benchmarks/README.md) and, with
`--json FILE`, the same figures plus the machine description as JSON."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("tokenizers", "transformers", "datasets", "numpy", "polars", "spacy", "psutil")


@dataclass(kw_only=True)
class Table:
    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, **row: Any) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"table {self.title!r}: unknown columns {sorted(unknown)}")
        self.rows.append(row)

    def markdown(self) -> str:
        head = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                "|" + "|".join("---" for _ in self.columns) + "|"]  # fmt: skip
        body = ["| " + " | ".join(_fmt(r.get(c)) for c in self.columns) + " |" for r in self.rows]
        notes = [""] + [f"- {n}" for n in self.notes] if self.notes else []
        return "\n".join(head + body + notes)

    def to_json(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "notes": self.notes}


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def machine() -> dict[str, Any]:
    """What the README's figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    import litdata

    versions: dict[str, str | None] = {"litdata": litdata.__version__}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": ram,
        "loadavg_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "packages": versions,
    }


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median wall time of `repeats` calls of fn (after none: callers do their own warm-up), all times, last result."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")


def emit(
    name: str, tables: list[Table], *, json_path: Path | None, config: dict[str, Any], info: dict[str, Any]
) -> dict:
    """Print the tables and (optionally) write the JSON document; returns it. `info` is `machine()` taken
    when the benchmark started (so its date and load average are those of the start)."""
    print(f"## {name}\n")
    print(f"machine: {info['nproc']} x {info['cpu']}, {info['ram_gib']} GiB RAM, Python {info['python']}, "
          f"load average at start {info['loadavg_at_start'][0]:.1f}; {info['date']}\n")  # fmt: skip
    for t in tables:
        print(t.markdown() + "\n")
    doc = {"benchmark": name, "machine": info, "config": config, "tables": [t.to_json() for t in tables]}
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return doc


def run_benchmark(name: str, args: argparse.Namespace, measure: Callable[[argparse.Namespace, Path], list[Table]]) -> int:
    """The common `main` tail: measure in `args.work` (or a temporary folder), then print and write the figures."""
    import contextlib
    import tempfile
    import time

    info, t0 = machine(), time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = getattr(args, "work", None) or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{name}_")))
        tables = measure(args, work)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config["total_seconds"] = round(time.perf_counter() - t0, 1)
    emit(name, tables, json_path=args.json, config=config, info=info)
    return 0
