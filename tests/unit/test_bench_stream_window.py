"""The bench hands each reader of the log's stream the batches one shard of production's stream
would hand it: the template's window at 1 M events a day, over the full log's shards."""

from __future__ import annotations

import dataclasses

import pytest

from bench import aws_path, shards
from bench.emulator import BatchSizes
from infra import template
from infra.local import streams


def _source(function: str) -> streams.StreamSource:
    (source,) = [s for s in streams.stream_sources() if s.table == "DecisionLogTable" and s.function == function]
    return source


def _window(function: str, event: str) -> float:
    """The mapping's window as deployed with the template's defaults (a parameter's Default)."""
    raw = template.raw()
    window = raw["Resources"][function]["Properties"]["Events"][event]["Properties"]["MaximumBatchingWindowInSeconds"]
    if isinstance(window, dict):
        window = raw["Parameters"][window["Ref"]]["Default"]
    return float(window)


def test_the_publishing_window_is_a_deploy_parameter_of_five_seconds_by_default() -> None:
    # Given the template as deployed without overrides
    raw = template.raw()
    parameter = raw["Parameters"]["PublishingWindowSeconds"]
    # Then the publishing mapping's window is the parameter, 5 s by default, within what Lambda allows
    spec = raw["Resources"]["LogStreamFunction"]["Properties"]["Events"]["DecisionLogStream"]["Properties"]
    assert spec["MaximumBatchingWindowInSeconds"] == {"Ref": "PublishingWindowSeconds"}
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (5, 0, 300)
    assert _source(shards.PUBLISHING).batching_window == 5.0


def test_a_longer_publishing_window_set_at_deploy_gathers_more_decisions_per_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the operator deploys with PublishingWindowSeconds=30 instead of the default
    raw = template.raw()
    raw["Parameters"]["PublishingWindowSeconds"]["Default"] = 30
    monkeypatch.setattr(template, "raw", lambda: raw)
    # When the bench forms one shard's publishing batch from the template
    events = shards.stream_batch_events(shards.PUBLISHING)
    # Then it holds six times the default's (30 s x 1,000,000 / 86,400 / 40 shards)
    assert events == pytest.approx(30 * 1_000_000 / 86_400 / 40)


def test_a_full_log_of_a_million_events_a_day_has_forty_shards() -> None:
    # Given 400 days of 1,000,000 entries of ~1 KB, in partitions of at most 10 GB
    # Then the stream has one shard per partition: 40 (a young log, fewer)
    assert shards.log_shards() == 40
    assert shards.log_shards(retention_days=30) == 3


def test_each_reader_batch_holds_its_template_window_of_one_shard() -> None:
    # Given the template's two event sources on the decision log's stream, read as the deployment reads them
    publishing = _window("LogStreamFunction", "DecisionLogStream")
    counting = _window("LogCountFunction", "DecisionLogCount")
    assert _source(shards.PUBLISHING).batching_window == publishing
    assert _source(shards.COUNTING).batching_window == counting
    # Then a bench batch is window x 1,000,000 / 86,400 / 40 events, at least one
    rate = 1_000_000 / 86_400 / 40
    assert shards.stream_batch_events(shards.PUBLISHING) == pytest.approx(max(1.0, publishing * rate))
    assert shards.stream_batch_events(shards.COUNTING) == pytest.approx(counting * rate)
    # And the counting window, chosen for the bill, gathers dozens of events a shard's batch
    assert shards.stream_batch_events(shards.COUNTING) > 50


def test_the_batch_follows_the_window_at_least_one_event_and_at_most_the_batch_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = _source(shards.COUNTING)
    for window, expected in ((5.0, 5 * 1_000_000 / 86_400), (0.0, 1.0), (300.0, 100.0)):
        # Given the template's window (and a batch size of 100) changed, on one shard
        changed = dataclasses.replace(source, batching_window=window, batch_size=100)
        monkeypatch.setattr(streams, "stream_sources", lambda changed=changed: [changed])
        # Then the bench's batch follows it (no window: one event; never past BatchSize)
        assert shards.stream_batch_events(shards.COUNTING, shards=1) == pytest.approx(expected)


def test_a_reader_is_drained_once_a_window_is_full_averaging_the_window() -> None:
    # Given a window of 57.87 events and decide batches of ten
    cadence = shards.StreamWindow(events=1_000_000 * 5 / 86_400)
    # When 10,000 events are decided in batches of ten
    drains = [n for n in range(1, 1001) if cadence.add(10)]
    # Then the first drain comes after the sixth batch (60 events), none before the window is full
    assert drains[0] == 6
    # And the drains average the window: 10,000 / 57.87 = 172.8 batches of the stream
    assert len(drains) == 172
    # And what is left over is drained at the end, once
    assert cadence.flush() is True
    assert cadence.flush() is False


def test_a_window_smaller_than_a_decide_batch_is_handed_in_batches_averaging_it() -> None:
    # Given a shard's window of 1.45 events (publishing at 5 s over 40 shards)
    window = BatchSizes(1.45)
    # When 1,000 batches are handed at the sizes it asks for, with reads that find nothing between
    sizes = []
    for _ in range(1000):
        sizes.append(window.next())
        window.took(sizes[-1])
        window.next()  # an empty read asks too, and takes nothing
    # Then the batches are of one or two records and average the window
    assert set(sizes) == {1, 2}
    assert sum(sizes) / len(sizes) == pytest.approx(1.45, abs=0.01)


def test_the_bench_hands_each_reader_of_the_log_stream_a_shard_s_batches() -> None:
    # Given 130 events of customers with one past interaction, through the queue path of part 2
    (result,) = aws_path.measure(events=130, histories=(1,))
    # Then the log count function ran once a full shard window of ~87 events, and once for the
    # rest; the log stream function once per ~1.45 records
    assert result.failed_records == 0
    counting = result.stream_invocations_of(shards.COUNTING)
    assert counting == 2
    assert result.stream_invocations - counting >= 130 / 2
    # And it counted each stream batch once: at most one counting transaction an invocation
    assert result.stream_counts_once_per_batch
    # And published every decision and cancellation, in ceil(entries / 10) PutEvents a stream batch
    assert result.put_events_entries == result.events + result.cancellations
    assert result.calls_by_any_function("events", "PutEvents") == result.put_events_needed
