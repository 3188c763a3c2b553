"""Timings summarise any number of measurements in constant memory."""

from __future__ import annotations

import math
import statistics
import sys

from agent.tasks._timings import Timings


def test_timings_give_count_mean_and_best_of_what_was_measured() -> None:
    values = [0.3, 0.1, 0.2, 0.25]
    timings = Timings()
    timings.add(values[0])
    timings.extend(values[1:])
    assert timings.count == 4
    assert timings.best == 0.1
    assert math.isclose(timings.mean, statistics.fmean(values))
    assert math.isnan(Timings().mean)


def test_timings_do_not_grow_with_the_number_of_measurements() -> None:
    timings = Timings()
    size = sys.getsizeof(timings.__dict__)
    timings.extend(1e-6 * i for i in range(1, 200_001))
    assert timings.count == 200_000 and timings.best == 1e-6
    assert sys.getsizeof(timings.__dict__) == size
