"""The fleet verdict is never stronger than its weakest host; hosts of another GPU or build are grouped apart."""

from __future__ import annotations

import pytest

from swapbench.core.fleet import FleetHost, fleet_report, fleet_verdict, groups_of


def host(name: str, outcome: str = "complete", decision: str | None = "adopt", gpu: str = "RTX 5070 Ti",
         build: str = "b11434") -> FleetHost:  # fmt: skip
    return FleetHost(host=name, run_id=f"r-{name}", run_dir=f"/runs/{name}", outcome=outcome, decision=decision,
                     gpu=gpu, build=build)  # fmt: skip


@pytest.mark.parametrize(("hosts", "verdict", "first"), [
    ([host("a"), host("b")], "adopt", "adopt on every host (2)"),
    ([host("a"), host("b", outcome="not-restored", decision=None)], "reject", "production was NOT restored on b"),
    ([host("a", decision="reject"), host("b", outcome="aborted-restored")], "reject", "rejected on a"),
    ([host("a"), host("b", outcome="aborted-restored", decision=None)], "inconclusive",
     "the window did not complete on b"),
    ([host("a", decision="pending"), host("b")], "pending", "awaiting a judgment on a"),
    ([host("a", decision="inconclusive"), host("b", decision=None)], "inconclusive", "no adopt decision on a, b"),
    ([], "inconclusive", "no host's window was found"),
])  # fmt: skip
def test_the_fleet_verdict(hosts: list[FleetHost], verdict: str, first: str) -> None:
    found, reasons = fleet_verdict(hosts)
    assert (found, reasons[0]) == (verdict, first)
    assert reasons[1:] == [f"{h.host}: {h.outcome}, decision {h.decision or 'none'}" for h in hosts]


def test_hosts_are_grouped_by_gpu_and_build_never_merged() -> None:
    hosts = [host("panda"), host("lynx", build="b12000"), host("tiger"), host("ox", gpu="RTX 4090")]
    groups = groups_of(hosts)
    assert [(g.gpu, g.build, g.hosts) for g in groups] == [
        ("RTX 5070 Ti", "b11434", ["panda", "tiger"]), ("RTX 5070 Ti", "b12000", ["lynx"]),
        ("RTX 4090", "b11434", ["ox"])]  # fmt: skip
    report = fleet_report(hosts)
    assert [h.host for h in report.hosts] == ["lynx", "ox", "panda", "tiger"] and report.verdict == "adopt"


@pytest.mark.parametrize(("hosts", "verdict", "first"), [
    ([host("a")], "inconclusive", "no window from b (the rollout stopped before it?)"),
    ([host("a", decision="reject")], "reject", "rejected on a"),
    ([host("a", decision="pending")], "inconclusive", "no window from b (the rollout stopped before it?)"),
])  # fmt: skip
def test_an_expected_host_without_a_window_keeps_the_fleet_from_adopting(
    hosts: list[FleetHost], verdict: str, first: str
) -> None:
    report = fleet_report(hosts, expected=["a", "b"])
    assert (report.verdict, report.reasons[0], report.missing) == (verdict, first, ["b"])
    assert report.reasons[-1] == "b: no window"
