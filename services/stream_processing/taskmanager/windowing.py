"""Keyed tumbling windows on event time, with count and sum.

Event time is an integer number of milliseconds in `time_field`. Each source partition has a
watermark: the highest event time it has delivered (or announced with a {"_watermark": ms} marker
record). The task's watermark is the lowest partition watermark; a window [start, start + size) is
emitted, once, when that watermark reaches its end. Producers that write each partition in event
time order therefore get a result per window that does not depend on how partitions interleave,
which is what makes replays after a restore emit the same values under the same keys. Records
for windows that are already emitted are late: they are counted and dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_SCALAR_KEY_TYPES = (str, int, float, bool)


@dataclass(frozen=True)
class WindowResult:
    window_start: int
    window_end: int
    key: object
    count: int
    sum: float | int | None

    def as_record(self) -> dict:
        record = {"window_start": self.window_start, "window_end": self.window_end, "key": self.key,
                  "count": self.count}
        if self.sum is not None:
            record["sum"] = self.sum
        return record


class TumblingWindowAggregator:
    def __init__(self, key_field: str, time_field: str, size_ms: int, sum_field: str | None = None,
                 idle_timeout_ms: int | None = None):
        if size_ms <= 0:
            raise ValueError("window size_ms must be positive")
        self.key_field = key_field
        self.time_field = time_field
        self.size_ms = size_ms
        self.sum_field = sum_field
        self.idle_timeout_ms = idle_timeout_ms
        self.windows: dict[tuple[int, object], list] = {}
        self.partition_watermarks: dict[int, int | None] = {}
        self.partition_activity: dict[int, float] = {}
        self.emitted_until: int | None = None
        self.late_records = 0
        self.invalid_records = 0

    def set_partitions(self, partitions: list[int]) -> None:
        now = time.monotonic()
        self.partition_watermarks = {p: self.partition_watermarks.get(p) for p in partitions}
        self.partition_activity = {p: now for p in partitions}

    def window_start(self, event_time: int) -> int:
        return event_time - event_time % self.size_ms

    def add(self, partition: int, record: dict) -> bool:
        """Counts the record into its window; False when it is invalid or late."""
        event_time = record.get(self.time_field)
        key = record.get(self.key_field)
        amount = record.get(self.sum_field, 0) if self.sum_field else 0
        if (
            not isinstance(event_time, int) or isinstance(event_time, bool)
            or not isinstance(key, _SCALAR_KEY_TYPES)
            or not isinstance(amount, (int, float)) or isinstance(amount, bool)
        ):
            self.invalid_records += 1
            return False
        self.observe_time(partition, event_time)
        start = self.window_start(event_time)
        if self.emitted_until is not None and start + self.size_ms <= self.emitted_until:
            self.late_records += 1
            return False
        window = self.windows.setdefault((start, key), [0, 0])
        window[0] += 1
        window[1] += amount
        return True

    def observe_time(self, partition: int, event_time: int) -> None:
        current = self.partition_watermarks.get(partition)
        if current is None or event_time > current:
            self.partition_watermarks[partition] = event_time
        self.partition_activity[partition] = time.monotonic()

    def watermark(self) -> int | None:
        now = time.monotonic()
        active = [
            mark for partition, mark in self.partition_watermarks.items()
            if self.idle_timeout_ms is None
            or (now - self.partition_activity.get(partition, now)) * 1000 < self.idle_timeout_ms
        ]
        if not active or any(mark is None for mark in active):
            return None
        return min(active)

    def pop_closed(self) -> list[WindowResult]:
        watermark = self.watermark()
        if watermark is None:
            return []
        closed = sorted(
            (item for item in self.windows.items() if item[0][0] + self.size_ms <= watermark),
            key=lambda item: (item[0][0], str(item[0][1])),
        )
        for window_key, _count_and_sum in closed:
            del self.windows[window_key]
        if self.emitted_until is None or watermark > self.emitted_until:
            self.emitted_until = watermark - watermark % self.size_ms
        return [
            WindowResult(start, start + self.size_ms, key, count, total if self.sum_field else None)
            for (start, key), (count, total) in closed
        ]

    def snapshot(self) -> dict:
        return {
            "windows": [[start, key, count, total] for (start, key), (count, total) in self.windows.items()],
            "partition_watermarks": {str(p): mark for p, mark in self.partition_watermarks.items()},
            "emitted_until": self.emitted_until,
        }

    def restore(self, state: dict) -> None:
        self.windows = {(start, key): [count, total] for start, key, count, total in state["windows"]}
        self.partition_watermarks.update({int(p): mark for p, mark in state["partition_watermarks"].items()})
        self.emitted_until = state["emitted_until"]
