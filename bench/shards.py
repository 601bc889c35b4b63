"""How the decision log's stream meets its two readers at the scale the cost goals price: how many
shards the stream has, and so how many records each reader's batch holds.

A DynamoDB stream has about one shard per table partition, and Lambda batches each shard apart
(ParallelizationFactor 1: one batch per shard at a time). A partition holds at most 10 GB, so a
log kept RETENTION_DAYS at EVENTS_PER_DAY has about

    1,000,000 events/day x 400 days x ~1 KB an entry / 10 GB = 40 partitions,

and a batching window of W seconds hands each reader W x 11.6 / 40 records a shard, not W x 11.6.
Throughput would add partitions only past 1,000 write units a second (this rate needs ~50).
moto's stream has one shard: the bench forms each reader's batches as the shards would, by
handing the reader what was committed since its last drain once a shard's window is full
(StreamWindow). A young log has fewer partitions, so bigger batches: pricing the full log is the
conservative figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

# The traffic the stream's windows (template.yaml) are chosen for: a contact centre deciding a
# million interactions a day.
EVENTS_PER_DAY = 1_000_000
RETENTION_DAYS = 400  # shared.config.Settings.decision_retention_days' default
# A log entry is 0.5-0.9 KB (bench/cost.py measures them), plus DynamoDB's ~100 B per item; the
# outcome and admin records and the pending-to-released rewrite do not add items.
ENTRY_BYTES = 1_000
PARTITION_BYTES = 10 * 10**9  # "10 GB" a partition, as DynamoDB documents it

PUBLISHING = "LogStreamFunction"
COUNTING = "LogCountFunction"


def log_shards(
    events_per_day: int = EVENTS_PER_DAY, retention_days: int = RETENTION_DAYS, entry_bytes: int = ENTRY_BYTES
) -> int:
    """The stream's shards once the log holds its full retention: one per 10 GB partition."""
    return max(1, math.ceil(events_per_day * retention_days * entry_bytes / PARTITION_BYTES))


def stream_batch_events(
    function: str = COUNTING, events_per_day: int = EVENTS_PER_DAY, shards: int | None = None
) -> float:
    """Events one batch of `function`'s mapping holds in production: its
    MaximumBatchingWindowInSeconds x the event rate / the shards (at least one event, at most its
    BatchSize)."""
    from infra.local import streams

    (source,) = [s for s in streams.stream_sources() if s.table == "DecisionLogTable" and s.function == function]
    shards = log_shards(events_per_day) if shards is None else shards
    return max(1.0, min(float(source.batch_size), source.batching_window * events_per_day / 86_400 / shards))


@dataclass
class StreamWindow:
    """When the bench drains one reader of the log's stream: once the decide batches since its last
    drain hold a shard's batching window of events (stream_batch_events), the remainder carried
    over, so its batches average what a shard's window sees in production."""

    events: float = field(default_factory=partial(stream_batch_events, COUNTING))
    waiting: float = 0.0  # events toward the next drain, with what the last one left over
    undrained: int = 0  # events decided since the last drain
    drains: int = 0

    def add(self, events: int) -> bool:
        """`events` more were decided; True when the reader is to be drained now."""
        self.waiting += events
        self.undrained += events
        if self.waiting + 1e-9 < self.events:
            return False
        self.waiting = max(0.0, self.waiting - self.events)
        self.undrained = 0
        self.drains += 1
        return True

    def flush(self) -> bool:
        """The end of a run: True if decided events still wait to be drained."""
        undrained, self.undrained, self.waiting = self.undrained > 0, 0, 0.0
        return undrained
