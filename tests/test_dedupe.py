"""A ticket held under the scanner is one scan, not one per frame."""

from __future__ import annotations

import threading

import pytest

from gate_agent.scanner import Deduplicator
from gate_core.codes import SigningKey, decimal_form, issue_code


class FakeClock:
    """Monotonic seconds that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


def test_same_code_within_the_window_is_one_scan(clock):
    dedupe = Deduplicator(window_s=2.0, clock=clock)
    assert dedupe.accept("PG1AAA")
    accepted = 1
    for _frame in range(59):  # two seconds of video showing the same ticket
        clock.now += 1 / 30
        accepted += dedupe.accept("PG1AAA")
    assert accepted == 1


def test_a_ticket_read_in_either_form_of_its_code_is_one_scan(clock):
    """A new ticket's QR carries the decimal form; a reader (or the same ticket printed before) may give the
    base 32 text. Within the window they are one ticket, one scan; another ticket is not held back."""
    code = issue_code(SigningKey.from_private_bytes(1, bytes(32)), 7, 9)
    dedupe = Deduplicator(window_s=2.0, clock=clock)
    assert dedupe.accept(decimal_form(code))
    clock.now += 0.5
    assert not dedupe.accept(code)
    assert not dedupe.accept(decimal_form(code).lower())
    assert dedupe.accept(issue_code(SigningKey.from_private_bytes(1, bytes(32)), 8, 9))


def test_same_code_after_the_window_counts_again(clock):
    dedupe = Deduplicator(window_s=2.0, clock=clock)
    assert dedupe.accept("PG1AAA")
    clock.now += 2.0
    assert dedupe.accept("PG1AAA")
    clock.now += 1.0
    assert not dedupe.accept("PG1AAA")


def test_window_runs_from_the_first_sighting_not_the_latest(clock):
    dedupe = Deduplicator(window_s=2.0, clock=clock)
    assert dedupe.accept("PG1AAA")  # t = 0
    clock.now += 1.5
    assert not dedupe.accept("PG1AAA")  # t = 1.5: still inside
    clock.now += 1.0
    # t = 2.5: 1.0 s after the last sighting, but 2.5 s after the accepted one.
    assert dedupe.accept("PG1AAA")


def test_different_codes_pass(clock):
    dedupe = Deduplicator(window_s=2.0, clock=clock)
    assert dedupe.accept("PG1AAA")
    assert dedupe.accept("PG1BBB")
    assert not dedupe.accept("PG1AAA")
    assert not dedupe.accept("PG1BBB")


def test_scan_time_can_be_given_instead_of_the_clock(clock):
    dedupe = Deduplicator(window_s=2.0, clock=clock)
    assert dedupe.accept("PG1AAA", now=10.0)
    assert not dedupe.accept("PG1AAA", now=11.9)
    assert dedupe.accept("PG1AAA", now=12.0)


def test_memory_stays_bounded_by_the_window(clock):
    dedupe = Deduplicator(window_s=2.0, clock=clock)
    for i in range(10_000):  # a busy day at 10 distinct codes a second
        clock.now += 0.1
        assert dedupe.accept(f"PG1{i:06d}")
    assert len(dedupe) <= 21


def test_memory_is_capped_even_inside_the_window(clock):
    dedupe = Deduplicator(window_s=60.0, clock=clock, max_entries=100)
    for i in range(1000):
        dedupe.accept(f"PG1{i:06d}")
    assert len(dedupe) == 100
    assert not dedupe.accept("PG1000999")  # the most recent are the ones remembered


def test_sources_on_several_threads_get_one_acceptance(clock):
    dedupe = Deduplicator(window_s=2.0, clock=clock)
    results = []
    barrier = threading.Barrier(8)

    def scan():
        barrier.wait()
        results.append(dedupe.accept("PG1RACE"))

    threads = [threading.Thread(target=scan) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(results) == [False] * 7 + [True]


@pytest.mark.parametrize("window", [0, -1])
def test_window_must_be_positive(window):
    with pytest.raises(ValueError, match="window_s"):
        Deduplicator(window_s=window)
