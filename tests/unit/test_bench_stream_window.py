"""The bench hands the log's stream to its function as production's batching window would at 1 M events a day."""

from __future__ import annotations

import dataclasses

import pytest

from bench import aws_path
from infra import template
from infra.local import streams


def _log_source() -> streams.StreamSource:
    (source,) = [s for s in streams.stream_sources() if s.table == "DecisionLogTable"]
    return source


def test_a_stream_batch_holds_the_template_window_of_a_million_events_a_day() -> None:
    # Given the template's DecisionLogStream event source, read as the deployment reads it
    spec = template.raw()["Resources"]["LogStreamFunction"]["Properties"]["Events"]["DecisionLogStream"]["Properties"]
    window = float(spec["MaximumBatchingWindowInSeconds"])
    # Then the local mapping carries that window, and a bench stream batch is window x 1,000,000 / 86,400 events
    assert _log_source().batching_window == window
    assert aws_path.stream_batch_events() == pytest.approx(window * 1_000_000 / 86_400)
    # And the window chosen for the bill gathers dozens of events a batch, not the ~12 of a 1 s window
    assert aws_path.stream_batch_events() > 50


def test_the_batch_follows_the_window_at_least_one_event_and_at_most_the_batch_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = _log_source()
    for window, expected in ((1.0, 1_000_000 / 86_400), (0.0, 1.0), (300.0, float(source.batch_size))):
        # Given the template's window changed to `window`
        changed = dataclasses.replace(source, batching_window=window)
        monkeypatch.setattr(streams, "stream_sources", lambda changed=changed: [changed])
        # Then the bench's stream batch follows it (no window: one event; never past BatchSize)
        assert aws_path.stream_batch_events() == pytest.approx(expected)


def test_the_stream_is_drained_once_a_window_is_full_averaging_the_window() -> None:
    # Given a window of 57.87 events and decide batches of ten
    cadence = aws_path.StreamWindow(events=1_000_000 * 5 / 86_400)
    # When 10,000 events are decided in batches of ten
    drains = [n for n in range(1, 1001) if cadence.add(10)]
    # Then the first drain comes after the sixth batch (60 events), none before the window is full
    assert drains[0] == 6
    # And the drains average the window: 10,000 / 57.87 = 172.8 batches of the stream
    assert len(drains) == 172
    # And what is left over is drained at the end, once
    assert cadence.flush() is True
    assert cadence.flush() is False


def test_nothing_is_left_to_drain_right_after_a_drain() -> None:
    # Given a window of 57.87 events, when exactly 60 events are decided (a drain after the sixth batch)
    cadence = aws_path.StreamWindow(events=1_000_000 * 5 / 86_400)
    assert [cadence.add(10) for _ in range(6)] == [False] * 5 + [True]
    # Then the end of the run drains nothing more (the carried 2.13 events were drained already)
    assert cadence.flush() is False


def test_the_bench_hands_the_log_stream_one_batch_a_window() -> None:
    # Given 130 events of customers with one past interaction, through the queue path of part 2
    (result,) = aws_path.measure(events=130, histories=(1,))
    # Then the log stream function ran once a full window of ~58 events (after 60 and 120 events:
    # what was left over counts toward the next) and once for the last 10
    assert result.failed_records == 0
    assert result.stream_invocations == 3
    # And it counted each stream batch once: at most one counting transaction an invocation
    assert result.stream_counts_once_per_batch
    # And published every decision and cancellation, in ceil(entries / 10) PutEvents a stream batch
    assert result.put_events_entries == result.events + result.cancellations
    assert result.calls_by_any_function("events", "PutEvents") == result.put_events_needed
