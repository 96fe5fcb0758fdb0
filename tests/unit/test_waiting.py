"""The one way swapbench waits: until a condition holds, or until it has held for a settle time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from swapbench.host.processes.waiting import throttled, wait_steady, wait_until


def counted(answer: Callable[[], bool], asked: list[int]) -> Callable[[], bool]:
    def ask() -> bool:
        asked.append(1)
        return answer()

    return ask


def answers(*values: bool) -> Callable[[], bool]:
    """A condition that gives these answers in turn, then repeats the last one."""
    it: Iterator[bool] = iter(values)
    last = [values[-1]]

    def ask() -> bool:
        last[0] = next(it, last[0])
        return last[0]

    return ask


def test_wait_until_returns_as_soon_as_the_condition_holds() -> None:
    asked: list[int] = []
    assert wait_until(counted(lambda: len(asked) == 3, asked), timeout_s=30, poll_s=0.001) is True
    assert len(asked) == 3


def test_wait_until_looks_once_with_no_time_and_says_it_ran_out() -> None:
    asked: list[int] = []
    assert wait_until(counted(lambda: False, asked), timeout_s=0) is False
    assert asked == [1]


def test_wait_until_looks_again_at_the_deadline() -> None:
    asked: list[int] = []
    assert wait_until(counted(lambda: False, asked), timeout_s=0.02, poll_s=10) is False
    assert len(asked) == 2  # the sleep is cut to the deadline, then a last look


def test_steady_needs_the_condition_to_hold_for_the_settle_time() -> None:
    waited = wait_steady(answers(True, False, True), settle_s=0.01, timeout_s=30, poll_s=0.001)
    assert waited.ok and waited.aborted is None and waited.seconds >= 0.01


def test_steady_that_never_settles_runs_out() -> None:
    flicker = answers(*([True, False] * 1000))
    waited = wait_steady(flicker, settle_s=0.05, timeout_s=0.02, poll_s=0.001)
    assert not waited.ok and waited.aborted is None


def test_abort_ends_the_wait_with_its_reason() -> None:
    exited = answers(False, False, True)
    healthy: list[int] = []
    waited = wait_steady(counted(lambda: False, healthy), settle_s=0, timeout_s=30,
                         abort=lambda: "exited with code 1" if exited() else None, poll_s=0.001)  # fmt: skip
    assert (waited.ok, waited.aborted, len(healthy)) == (False, "exited with code 1", 2)


def test_a_refused_confirmation_starts_the_settling_again() -> None:
    confirmations: list[bool] = []

    def confirm() -> bool:
        confirmations.append(len(confirmations) >= 1)  # the first look: it restarted meanwhile
        return confirmations[-1]

    waited = wait_steady(lambda: True, settle_s=0.005, timeout_s=30, confirm=confirm, poll_s=0.001)
    assert waited.ok and confirmations == [False, True]


def test_a_throttled_check_is_asked_at_once_then_at_most_once_per_interval() -> None:
    """A costly check (a docker inspect) inside a fast wait: asked on the first poll, then between intervals the
    wait is told the last answer it may act on (here: none, keep waiting)."""
    asked: list[int] = []

    def exited() -> str | None:
        asked.append(1)
        return "container gone" if len(asked) == 2 else None

    check = throttled(exited, every_s=0.2, otherwise=None)
    assert check() is None and asked == [1]  # the first poll asks at once
    assert [check() for _ in range(5)] == [None] * 5 and asked == [1]  # not again within the interval
    waited = wait_steady(lambda: False, settle_s=0.0, timeout_s=5.0, abort=check, poll_s=0.01)
    assert waited.aborted == "container gone" and asked == [1, 1]
    assert 0.1 < waited.seconds < 1.0  # seen on the next interval, not at the deadline
