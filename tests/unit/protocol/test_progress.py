"""A long batch's progress: at most a line every ten seconds and every tenth, then one summary, each saying
what became of the sends (issue 22: a retry's summary counted the cards on record as sent)."""

from __future__ import annotations

from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi.exceptions import DeliveryUnknownError, RejectedError
from airflow_provider_chatapi.hooks._http import Progress

SENT = SendResult(id="true_1@c.us_A", sent=True, message="Sent", queue_number=None)
EARLIER = SendResult(
    id="true_1@c.us_B", sent=True, message="queued by an earlier try", queue_number=None, earlier_try=True
)
REFUSED = RejectedError("sendContact", "Chat not found")
UNKNOWN = DeliveryUnknownError("sendContact", "the answer was lost")


def lines_for(total: int, seconds_per_item: float, outcome: object = SENT) -> list[str]:
    progress = Progress(total, started=0.0)
    lines = [progress.finished(index * seconds_per_item + seconds_per_item, outcome) for index in range(total)]
    return [line for line in lines if line]


def test_a_long_batch_logs_at_most_every_ten_seconds_and_every_tenth() -> None:
    lines = lines_for(10_000, 0.01)  # 100 s in all
    assert 5 <= len(lines) <= 10
    assert lines[0] == "1000/10000 done (10 %): 1000 sent (100/s), ~90 s left"


def test_a_quick_batch_logs_no_progress_only_its_summary() -> None:
    assert lines_for(10_000, 0.0001) == []  # one second in all
    progress = Progress(3, started=0.0)
    for now in (0.1, 0.2):
        progress.finished(now, SENT)
    progress.finished(0.3, REFUSED)
    assert progress.summary(0.5) == "3 in 0.5 s: 2 sent (4/s), 1 not sent"


def test_a_retry_says_how_many_it_sent_and_how_many_an_earlier_try_had() -> None:
    """The summary of a retry that sent 10 cards and found 990 on record: before, "1000/1000 done (3194/s)"."""
    progress = Progress(1000, started=0.0)
    for index in range(1000):
        progress.finished(0.0003 * index, EARLIER if index < 990 else SENT)
    assert progress.summary(0.5) == "1000 in 0.5 s: 10 sent (20/s), 990 already sent by an earlier try"


def test_each_kind_of_outcome_is_named_and_nothing_sent_says_so() -> None:
    progress = Progress(4, started=0.0)
    for outcome in (EARLIER, EARLIER, REFUSED, UNKNOWN):
        progress.finished(1.0, outcome)
    assert progress.summary(2.0) == (
        "4 in 2.0 s: 0 sent, 2 already sent by an earlier try, 1 not sent, 1 outcome unknown"
    )


def test_failures_show_in_progress() -> None:
    progress = Progress(100, started=0.0)
    line = None
    for index in range(20):
        line = progress.finished(1.0 * (index + 1), SENT if index % 2 == 0 else REFUSED) or line
    assert line is not None and "10 not sent" in line
