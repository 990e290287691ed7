"""A long batch's progress: at most a line every ten seconds and every tenth, then one summary."""

from __future__ import annotations

from airflow_provider_chatapi._protocol.progress import Progress


def lines_for(total: int, seconds_per_item: float) -> list[str]:
    progress = Progress(total, started=0.0)
    lines = [progress.finished(index * seconds_per_item + seconds_per_item) for index in range(total)]
    return [line for line in lines if line]


def test_a_long_batch_logs_at_most_every_ten_seconds_and_every_tenth() -> None:
    lines = lines_for(10_000, 0.01)  # 100 s in all
    assert 5 <= len(lines) <= 10
    assert lines[0].startswith("1000/10000 done (10 %), 100/s, ~90 s left")


def test_a_quick_batch_logs_no_progress_only_its_summary() -> None:
    assert lines_for(10_000, 0.0001) == []  # one second in all
    progress = Progress(3, started=0.0)
    for now in (0.1, 0.2):
        progress.finished(now)
    progress.finished(0.3, ok=False)
    assert progress.summary(0.5) == "3/3 done, 1 failed in 0.5 s (6/s)"


def test_failures_show_in_progress() -> None:
    progress = Progress(100, started=0.0)
    line = None
    for index in range(20):
        line = progress.finished(1.0 * (index + 1), ok=index % 2 == 0) or line
    assert line is not None and "failed" in line
