"""Wall time per attempt and its cap (lsmia.cluster)."""
import pytest

from lsmia.cluster import DEFAULT_MAX_RUNTIME, max_runtime, wall_time


def test_resumable_jobs_ask_for_the_same_time_on_every_attempt():
    assert [wall_time(480, attempt, True, 1440) for attempt in (1, 2, 3)] == [480, 480, 480]


def test_other_jobs_grow_per_attempt_up_to_the_cap():
    assert [wall_time(600, attempt, False, 1440) for attempt in (1, 2, 3)] == [600, 1200, 1440]
    assert wall_time(2880, 1, True, 1440) == 1440


def test_max_runtime_comes_from_the_environment():
    assert max_runtime({}) == DEFAULT_MAX_RUNTIME
    assert max_runtime({"LSMIA_MAX_RUNTIME": "2880"}) == 2880
    with pytest.raises(ValueError, match="LSMIA_MAX_RUNTIME='two days'"):
        max_runtime({"LSMIA_MAX_RUNTIME": "two days"})
