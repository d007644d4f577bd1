"""The goals a run is held to: one server's req/s as a ratio to another's (the C reference, or a
rival such as uvloop) on named configs, as issue 14 set them for socketeer.aio.Loop.

A goal is checked against the run that measured it, from the same rounds as the table's ratios
(:func:`socketeer.benchmark.report.paired_ratios`): met when the lower quartile of the per-round
ratios reaches it, missed when the upper one stays below it, unclear in between (more
``--repeats``). Benchmarks report goals; tests never assert them (the host is shared and noisy).
``--goals`` picks the servers and configs the goals name (:func:`servers`, :func:`configs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .report import REFERENCE, middle, paired_ratios

__all__ = ["Goal", "GOALS", "CONTEXT", "servers", "configs", "verdict", "evaluate"]


@dataclass(frozen=True)
class Goal:
    """``server`` makes at least ``at_least`` times ``against``'s req/s on each of ``configs``."""

    server: str
    against: str
    at_least: float
    configs: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.server} >= {self.at_least}x {self.against}"


TCP = ("tcp-1x64", "tcp-10x64", "tcp-100x1k", "tcp-10x64k")  # the configs of issue 14's table

GOALS = (  # issue 14, item 4 (the call_soon and timer goals are benchmarks/bench_loop_calls.py's)
    Goal("socketeer-loop-protocol", REFERENCE, 0.95, ("tcp-10x64", "tcp-100x1k", "tcp-10x64k")),
    Goal("socketeer-loop-protocol", "uvloop-protocol", 1.0, (*TCP, "udp-10x64")),  # ahead of uvloop
    Goal("socketeer-loop-protocol", REFERENCE, 0.9, ("udp-10x64",)),  # DatagramProtocol
    Goal("socketeer-loop-protocol", "uvloop-protocol", 1.3, ("tcp-300x64",)),
    Goal("socketeer-loop-streams", REFERENCE, 0.8, TCP),
    Goal("socketeer-loop-aio", REFERENCE, 0.9, TCP),
    Goal("socketeer-aio", "asyncio-streams", 1.0, TCP),  # aio Streams beat asyncio's on the stock loop
)


CONTEXT = ("asyncio-protocol", "uvloop-streams")  # no goal names them; issue 14's matrix shows them beside


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def servers() -> list[str]:
    """Every server a goal names, the C reference first (every table ratio is taken to it), and
    the CONTEXT the goals are read beside: issue 14's matrix."""
    return _unique([REFERENCE, *(name for goal in GOALS for name in (goal.server, goal.against)), *CONTEXT])


def configs() -> list[str]:
    """Every config a goal names."""
    return _unique([config for goal in GOALS for config in goal.configs])


def verdict(at_least: float, quartiles: Optional[list[float]]) -> str:
    """met / missed / unclear for a goal and the quartiles of its per-round ratios."""
    if not quartiles:
        return "no rounds measured both servers"
    if quartiles[0] >= at_least:
        return "met"
    if quartiles[1] < at_least:
        return "missed"
    return "unclear (the quartiles straddle it: more --repeats)"


def evaluate(rows: list[dict[str, Any]],
             runs: dict[tuple[str, str], list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], int]:
    """Each goal on each of its configs this run measured: the ratio, its quartiles and the
    verdict (or why a server could not be measured); and how many goal cells the run left out
    (a server or config not picked)."""
    status = {(row["config"], row["server"]): row["status"] for row in rows}
    checked: list[dict[str, Any]] = []
    left_out = 0
    for goal in GOALS:
        for config in goal.configs:
            own, base = (config, goal.server), (config, goal.against)
            if own not in runs or base not in runs:
                left_out += 1
                continue
            ratios = paired_ratios(runs[own], runs[base])
            ratio, quartiles = middle(ratios)
            failed = [f"{name} {status[key]}" for key, name in ((own, goal.server), (base, goal.against))
                      if status.get(key, "ok") != "ok"]
            checked.append({"goal": goal.label, "server": goal.server, "against": goal.against,
                            "at_least": goal.at_least, "config": config, "ratio": ratio,
                            "ratio_range": quartiles, "ratios": [round(r, 3) for r in ratios],
                            "verdict": "; ".join(failed) or verdict(goal.at_least, quartiles)})
    return checked, left_out
