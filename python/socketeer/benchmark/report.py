"""The echo benchmark's figures: the runs of each cell summed up into one row, each row's ratio
to the C reference (paired by round), and the table (or JSON) printed from the rows, with the
goals the run measured (:mod:`socketeer.benchmark.goals`) under it."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .harness import Config, Server

__all__ = ["REFERENCE", "median", "summarize", "paired_ratios", "middle", "add_ratios", "meta", "table"]

REFERENCE = "c-reference"  # the server every ratio is taken to


def median(values: Iterable[Optional[float]]) -> Optional[float]:
    """The median of the values that are not None, or None when none is."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(config: Config, server: Server, runs: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """One row: the medians of one cell's runs (the load generator's reports)."""
    good = [r for r in runs if "error" not in r]
    cpu = [r.get("server_cpu") or {} for r in good]
    row = {
        "config": config.name, "transport": config.transport, "connections": config.connections,
        "size": config.size, "server": server.name, "what": server.what, "status": status,
        "runs": len(good), "rps_runs": [round(r["rps"], 1) for r in good],
        "rps": median([r["rps"] for r in good]),
        "mib_per_s": median([r["mib_per_s"] for r in good]),
        "cpu_us_per_req": median([c.get("cpu_us_per_req") for c in cpu]),
        "user_us_per_req": median([c.get("user_us_per_req") for c in cpu]),
        "sys_us_per_req": median([c.get("sys_us_per_req") for c in cpu]),
        "server_utilization": median([c.get("utilization") for c in cpu]),
        "client_utilization": median([r["client_cpu_utilization"] for r in good]),
        "p50_us": median([r["latency_us"]["p50"] for r in good]),
        "p99_us": median([r["latency_us"]["p99"] for r in good]),
        "errors": sum(r["errors"] for r in good),
        "lost": sum(r.get("udp", {}).get("lost", 0) for r in good),
    }
    if status == "ok" and not good:
        row["status"] = "failed (" + "; ".join(sorted({r["error"] for r in runs}))[:200] + ")"
    return row


def paired_ratios(own: list[dict[str, Any]], base: list[dict[str, Any]]) -> list[float]:
    """own's req/s over base's, round by round, sorted (a round where either failed makes no
    pair): in round r both were measured within seconds of each other, so a slow drift of the
    host cancels out of their ratio, where it would not out of the ratio of two medians taken
    over the whole run."""
    return sorted(mine["rps"] / other["rps"] for mine, other in zip(own, base)
                  if "error" not in mine and "error" not in other and other["rps"])


def middle(ratios: list[float]) -> tuple[Optional[float], Optional[list[float]]]:
    """The median of sorted ratios and their middle half (the quartiles), rounded; None, None
    when there are none."""
    if not ratios:
        return None, None
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios
    return round(statistics.median(ratios), 3), [round(quartiles[0], 3), round(quartiles[-1], 3)]


def add_ratios(rows: list[dict[str, Any]], runs: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """Each server's req/s over the C reference's, paired by round (:func:`paired_ratios`). The
    row gets the median of those ratios and their middle half (quartiles) as the range."""
    for row in rows:
        paired = paired_ratios(runs.get((row["config"], row["server"]), []), runs.get((row["config"], REFERENCE), []))
        row["ratios_to_c"] = [round(r, 3) for r in paired]
        row["ratio_to_c"], row["ratio_range"] = middle(paired)


def meta(args: argparse.Namespace, server_cpu: Optional[int], client_cpu: Optional[int]) -> dict[str, Any]:
    """Where and how the run was made."""
    return {
        "python": platform.python_version(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "server_cpu": server_cpu, "client_cpu": client_cpu, "duration": args.duration,
        "warmup": args.warmup, "repeats": args.repeats, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _span(quartiles: Optional[list[float]]) -> str:
    return f"({quartiles[0]:.2f}-{quartiles[1]:.2f})" if quartiles else "-"


def _notes(row: dict[str, Any]) -> str:
    notes = []
    if row["errors"]:
        notes.append(f"{row['errors']} conn errors")
    if row["lost"]:
        notes.append(f"{row['lost']} lost")
    if (row["client_utilization"] or 0) > 0.9:
        notes.append("client-bound")
    if len(row["rps_runs"]) > 1:
        spread = (max(row["rps_runs"]) - min(row["rps_runs"])) / row["rps"] if row["rps"] else 0
        if spread > 0.25:
            notes.append(f"spread {spread:.0%}")
    return ", ".join(notes)


def table(report: dict[str, Any]) -> str:
    """The report as a text table: one block per config, one line per server."""
    m = report["meta"]
    pinned = f"server on CPU {m['server_cpu']}, load generator on CPU {m['client_cpu']}" \
        if m["server_cpu"] is not None else "not pinned"
    width = max([19, *(len(row["server"]) + 1 for row in report["results"])])  # the server column
    lines = [
        f"socketeer echo benchmark: {m['repeats']} x {m['duration']} s per cell (+{m['warmup']} s warm-up), "
        f"median req/s; {pinned}; Python {m['python']}, Linux {m['kernel']}",
        f"{'config':<13}{'server':<{width}}{'req/s':>10}{'x C':>7}{'(quartiles)':>13}{'CPU us/req':>12}{'user us':>9}"
        f"{'p99 us':>9}  notes",
    ]
    previous = None
    for row in report["results"]:
        if previous is not None and row["config"] != previous:
            lines.append("")
        name = row["config"] if row["config"] != previous else ""
        previous = row["config"]
        if row["status"] != "ok":
            status = row["status"] if len(row["status"]) <= 90 else row["status"][:87] + "...)"
            lines.append(f"{name:<13}{row['server']:<{width}}{status}")
            continue
        span = _span(row["ratio_range"])
        lines.append(f"{name:<13}{row['server']:<{width}}{_fmt(row['rps'], ',.0f'):>10}"
                     f"{_fmt(row['ratio_to_c'], '.2f'):>7}{span:>13}"
                     f"{_fmt(row['cpu_us_per_req'], '.2f'):>12}{_fmt(row['user_us_per_req'], '.2f'):>9}"
                     f"{_fmt(row['p99_us'], '.0f'):>9}  {_notes(row)}")
    return "\n".join(lines + _goal_lines(report))


def _goal_lines(report: dict[str, Any]) -> list[str]:
    """The goals block under the table (socketeer.benchmark.goals), when the run measured any."""
    checked, left_out = report.get("goals", []), report.get("goals_left_out", 0)
    if not checked:
        return []
    width = max(len(goal["goal"]) for goal in checked) + 2
    lines = ["", "goals (issue 14): the median of per-round ratios (quartiles); met when the lower quartile reaches it"]
    for goal in checked:
        lines.append(f"  {goal['goal']:<{width}}{goal['config']:<13}{_fmt(goal['ratio'], '.2f'):>5}"
                     f"{_span(goal['ratio_range']):>13}  {goal['verdict']}")
    if left_out:
        lines.append(f"  ({left_out} more goal cells need servers or configs this run left out; --goals runs them all)")
    return lines
