"""Interleaved timing: each round runs every case once, ratios are taken within a round."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[int], None]  # runs the operation n times


def _time(case: Case, n: int) -> float:
    start = time.perf_counter()
    case.run(n)
    return (time.perf_counter() - start) / n


def compare(
    title: str, baseline: Case, cases: Sequence[Case], *, n: int = 2000, rounds: int = 7
) -> dict[str, float]:
    """Print median µs/op per case and the median per-round ratio against ``baseline``."""
    everyone = [baseline, *cases]
    for case in everyone:  # warm-up
        case.run(max(1, n // 10))
    per_op: dict[str, list[float]] = {c.name: [] for c in everyone}
    ratios: dict[str, list[float]] = {c.name: [] for c in cases}
    for _ in range(rounds):
        base = _time(baseline, n)
        per_op[baseline.name].append(base)
        for case in cases:
            t = _time(case, n)
            per_op[case.name].append(t)
            ratios[case.name].append(t / base)
    print(f"\n## {title}  (median of {rounds} rounds x {n} ops)")
    print(f"{'case':<44} {'us/op':>9} {'x baseline':>11}")
    print(
        f"{baseline.name:<44} {statistics.median(per_op[baseline.name]) * 1e6:>9.1f} {'1.00':>11}"
    )
    result = {}
    for case in cases:
        ratio = statistics.median(ratios[case.name])
        result[case.name] = ratio
        us = statistics.median(per_op[case.name]) * 1e6
        print(f"{case.name:<44} {us:>9.1f} {ratio:>11.2f}")
    return result
