"""Job sizes (lsmia.cluster): wall time per attempt and its cap, threads per kind, GPU rules."""
import pytest

from lsmia.cluster import DEFAULT_MAX_RUNTIME, gpu_rules, job_threads, max_runtime, wall_time


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


def test_threads_come_from_the_config_by_kind_of_job():
    config = {"threads": {"train": 8, "attack": 4}}
    assert job_threads(config, "train") == 8 and job_threads(config, "attack") == 4
    assert job_threads(config, "metrics") == 1, "an unset kind runs on one core"
    assert job_threads({}, "train") == 1


def test_gpu_rules_are_read_from_the_rule_files_copies_included(tmp_path):
    (tmp_path / "a.smk").write_text(
        "rule fit:\n    threads: 8\n    resources:\n        gpu=1,\n        mem_mb=memory(8),\n\n\n"
        "rule pack:\n    resources:\n        mem_mb=memory(8),\n\n\n"
        "use rule fit as fit_again with:\n    log:\n        'x.log',\n\n\n"
        "use rule fit as fit_on_cpu with:\n    resources:\n        gpu=0,\n")
    (tmp_path / "b.smk").write_text("rule score:\n    resources:\n        gpu=1\n")
    assert gpu_rules(tmp_path) == ["fit", "score", "fit_again"]
