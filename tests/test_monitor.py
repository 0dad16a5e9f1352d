"""StudyMonitor.time_evaluation: the number of timed calls is checked and counted."""

from __future__ import annotations

import numpy as np
import pytest

from pndmkit.studies.monitor import StudyMonitor


def _counting_model():
    calls = []

    def model(x, t):
        calls.append(t)
        return x

    return model, calls


@pytest.mark.parametrize("repeats", [1, 3, np.int64(2)])
def test_time_evaluation_makes_one_warm_up_call_and_repeats_timed_ones(repeats):
    model, calls = _counting_model()
    monitor = StudyMonitor(log=lambda line: None)
    seconds = monitor.time_evaluation(model, np.zeros((4, 2)), 0.5, repeats=repeats)
    assert calls == [0.5] * (1 + int(repeats))
    assert seconds == monitor.seconds_per_evaluation and 0.0 <= seconds < 1.0
    assert monitor.batch == 4


@pytest.mark.parametrize("repeats, error, says", [
    (0, ValueError, r"repeats must be an integer >= 1, got 0"),
    (-2, ValueError, r"repeats must be an integer >= 1, got -2"),
    (2.0, TypeError, r"repeats must be an integer, got float 2.0"),
    (True, TypeError, r"repeats must be an integer, got bool True"),
    ("3", TypeError, r"repeats must be an integer, got str '3'"),
])
def test_time_evaluation_refuses_a_bad_repeats_before_calling_the_model(repeats, error, says):
    model, calls = _counting_model()
    monitor = StudyMonitor(log=lambda line: None)
    with pytest.raises(error, match=says):
        monitor.time_evaluation(model, np.zeros((4, 2)), 0.5, repeats=repeats)
    assert calls == [] and monitor.batch == 0
