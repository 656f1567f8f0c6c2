from __future__ import annotations

import json
import random

from stream_processing.taskmanager.windowing import TumblingWindowAggregator, WindowResult


def make_window(**overrides) -> TumblingWindowAggregator:
    window = TumblingWindowAggregator("user", "ts", size_ms=1000, **overrides)
    window.set_partitions([0, 1])
    return window


def test_window_is_emitted_once_when_every_partition_watermark_passes_its_end():
    window = make_window(sum_field="amount")
    window.add(0, {"user": "a", "ts": 100, "amount": 2})
    window.add(0, {"user": "a", "ts": 900, "amount": 3})
    window.add(0, {"user": "b", "ts": 1500, "amount": 1})
    assert window.pop_closed() == []  # partition 1 has no watermark yet
    window.add(1, {"user": "a", "ts": 999, "amount": 5})
    assert window.pop_closed() == []  # partition 1 is still inside [0, 1000)
    window.observe_time(1, 1000)
    assert window.pop_closed() == [WindowResult(0, 1000, "a", 3, 10)]
    assert window.pop_closed() == []
    window.observe_time(0, 5000)
    window.observe_time(1, 5000)
    assert window.pop_closed() == [WindowResult(1000, 2000, "b", 1, 1)]


def test_records_for_emitted_windows_are_late_and_dropped():
    window = make_window()
    window.observe_time(0, 2000)
    window.observe_time(1, 2000)
    window.pop_closed()
    assert window.add(0, {"user": "a", "ts": 1999}) is False
    assert window.late_records == 1
    assert window.add(0, {"user": "a", "ts": 2000}) is True


def test_invalid_records_are_counted_not_aggregated():
    window = make_window(sum_field="amount")
    for record in ({"user": "a"}, {"ts": 5}, {"user": "a", "ts": "5"}, {"user": ["x"], "ts": 5},
                   {"user": "a", "ts": 5, "amount": "x"}, {"user": "a", "ts": True}):
        assert window.add(0, record) is False
    assert window.invalid_records == 6
    assert window.windows == {}


def test_results_do_not_depend_on_how_partitions_interleave():
    events = {p: [{"user": f"u{i % 3}", "ts": p * 7 + i * 37} for i in range(200)] for p in (0, 1)}

    def run(seed: int) -> list[WindowResult]:
        window = make_window()
        queues = {p: list(items) + [{"_end": True}] for p, items in events.items()}
        order = random.Random(seed)
        results = []
        while any(queues.values()):
            partition = order.choice([p for p, q in queues.items() if q])
            record = queues[partition].pop(0)
            if record.get("_end"):
                window.observe_time(partition, 10**9)
            else:
                window.add(partition, record)
            results += window.pop_closed()
        return results

    first = run(1)
    assert sum(result.count for result in first) == 400
    assert run(2) == first
    assert run(3) == first


def test_snapshot_restore_round_trip_continues_identically():
    original = make_window(sum_field="amount")
    for i in range(50):
        original.add(i % 2, {"user": f"u{i % 4}", "ts": i * 100, "amount": i})
    restored = make_window(sum_field="amount")
    restored.restore(json.loads(json.dumps(original.snapshot())))
    for window in (original, restored):
        window.observe_time(0, 100_000)
        window.observe_time(1, 100_000)
    assert restored.pop_closed() == original.pop_closed()


def test_idle_partitions_stop_holding_back_the_watermark():
    window = make_window(idle_timeout_ms=1)
    window.add(0, {"user": "a", "ts": 10})
    window.observe_time(0, 5000)
    window.partition_activity[1] -= 1.0  # partition 1 has been silent for a second
    assert [r.key for r in window.pop_closed()] == ["a"]


def test_result_record_has_count_and_optional_sum():
    assert WindowResult(0, 10, "k", 2, None).as_record() == {
        "window_start": 0,
        "window_end": 10,
        "key": "k",
        "count": 2,
    }
    assert WindowResult(0, 10, "k", 2, 7).as_record()["sum"] == 7
