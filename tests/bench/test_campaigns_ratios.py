"""The campaigns benchmark's verdict (benchmarks/campaigns.py): the median of per-round paired
cost ratios. A round where either side served nothing has no ratio: the verdict is then NaN
(never meets a target) instead of a 0x round pulling the median down, or a NaN sorted among
numbers giving a median that depends on where it happened to land."""

from __future__ import annotations

import math

from benchmarks.campaigns import _median as median
from benchmarks.campaigns import paired_ratios


def test_the_median_of_paired_rounds_pairs_each_round_with_its_own_baseline() -> None:
    # (with campaigns, without) per round, in ms: the drift halves the speed of both sides.
    ratios = paired_ratios([(2.4, 2.0), (4.8, 4.0), (2.6, 2.0), (5.6, 4.0)])
    assert [round(r, 6) for r in ratios] == [1.2, 1.2, 1.3, 1.4]
    assert round(median(ratios), 6) == 1.25
    assert median([1.5, 1.1, 1.3]) == 1.3


def test_a_round_where_one_side_served_nothing_leaves_no_verdict() -> None:
    # A cost of 0 is a run with no successful request (benchmarks.campaigns._cost).
    nothing_with_campaigns = paired_ratios([(0.0, 2.0), (2.8, 2.0), (2.8, 2.0), (2.8, 2.0)])
    assert math.isnan(median(nothing_with_campaigns))  # was 1.4x, one round 0x
    nothing_without = paired_ratios([(2.8, 2.0), (2.8, 0.0), (2.4, 2.0), (2.4, 2.0)])
    assert math.isnan(median(nothing_without))  # sorting a NaN gave 1.2x or 1.4x
    assert math.isnan(median([1.0, float("nan"), 1.1, 1.2]))
