"""Comparison, decision and report.md on fixed results: refusals name the field, the rule is the user plan's,
the Markdown is pinned by a golden file (regenerate with SWAPBENCH_REGEN_GOLDEN=1 and review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swapbench.core.bench import BenchWorkload, interpret
from swapbench.core.compare import compare
from swapbench.core.decision import Judgment, Status, decide, rule_warnings
from swapbench.core.kinds import kind_of
from swapbench.core.metrics import workload_metrics
from swapbench.core.results import (
    Exchange,
    GpuInfo,
    HostInfo,
    ImageInfo,
    ParseOutcome,
    Provenance,
    Results,
    RunStatus,
    Sample,
    ServerInfo,
    ServerTimings,
    Usage,
    VramReport,
    WorkloadInfo,
    WorkloadResult,
)  # fmt: skip
from swapbench.core.steps import Outcome, SwapReport, SwapStatus
from swapbench.core.steps import Status as OutcomeStatus
from swapbench.core.vram import Footprint, Verdict
from swapbench.plan.models import Decision, KindName
from swapbench.report.markdown import render_markdown
from swapbench.report.results_file import reanalysed

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report.md"


def results(label: str, base_ms: float, adherent: int, n: int = 20, max_tokens: int = 20, image: str = "a" * 64,
            vram: Verdict | None = None, describe: str = "A red box on a grey path.", kinds: tuple[KindName, ...] = (
                "nav", "describe"), gpu: str | None = "RTX 5070 Ti", cache_prompt: bool = True) -> Results:  # fmt: skip
    def samples(kind: KindName) -> list[Sample]:
        out = []
        for i in range(n):
            ms = base_ms + (i % 5) * 0.5 + (3.0 if i == n - 1 else 0.0)
            parse = ParseOutcome(strategy=1 if i < adherent else 3) if kind == "nav" else None
            content = describe if kind == "describe" else '{"action":"left"}'
            timings = ServerTimings(prompt_ms=2.0, predicted_ms=ms - 4, predicted_n=20, cache_n=60, prompt_n=2)
            ex = Exchange(latency_ms=ms, http_status=200, content=content, timings=timings,
                          usage=Usage(completion_tokens=20), finish_reason="stop")  # fmt: skip
            out.append(interpret(i, i * ms, ex, workload(kind, parse)))
        return out

    def workload(kind: KindName, parse: ParseOutcome | None) -> BenchWorkload:
        return BenchWorkload(info=info(kind), bodies=({},), parse=None if parse is None else lambda _: parse)

    def info(kind: KindName) -> WorkloadInfo:
        return WorkloadInfo(name=kind, kind=kind, max_tokens=max_tokens if kind == "nav" else 128, prompt=f"{kind}?",
                            prompt_sha256=kind * 8, system=None, image=True, enable_thinking=False,
                            cache_prompt=cache_prompt, scores=list(kind_of(kind).scores))  # fmt: skip

    workloads = []
    for kind in kinds:
        s = samples(kind)
        metrics = workload_metrics(s, info(kind).scores, cache_prompt)
        workloads.append(WorkloadResult(workload=info(kind), warmup=[], samples=s, metrics=metrics))
    fp = {"resident_mib": 6000, "peak_mib": 6400, "device_total_mib": 16000, "pre_launch_used_mib": 7000}
    footprint = None if vram is None else Footprint(**fp, source="nvml-process", verdict=vram)
    return Results(
        run_id="r1", label=label, status=RunStatus.COMPLETE,
        provenance=Provenance(swapbench_version="0", plan_path=None, plan_sha256=None, seed=42, warmup=3, samples=n,
                              stream=False, started_at="t0", ended_at="t1"),
        host=HostInfo(hostname="panda", platform="linux", python="3.11",
                      gpu=GpuInfo(name=gpu, driver="580") if gpu else GpuInfo(unavailable_reason="no NVIDIA driver")),
        server=ServerInfo(url="http://127.0.0.1:11435"),
        image=ImageInfo(path="car-view.jpg", sha256=image, bytes=1, format="JPEG", width=640, height=480),
        workloads=workloads, vram=VramReport(footprint=footprint) if footprint else None,
    )  # fmt: skip


E2B = results("gemma-4-E2B", 18.4, adherent=20)
E4B = results("gemma-4-E4B", 24.0, adherent=20, vram=Verdict.HEALTHY)


def test_compare_refuses_unlike_runs_and_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"frames \(not the same camera frames"):
        compare(E2B, results("x", 20, 20, image="b" * 64))
    with pytest.raises(ValueError, match=r"workloads\.nav\.max_tokens"):
        compare(E2B, results("x", 20, 20, max_tokens=40))
    forced = compare(E2B, results("x", 20, 20, max_tokens=40), force=True)
    assert forced.differences == ["workloads.nav.max_tokens"]


def test_compare_verdicts() -> None:
    c = compare(E2B, E4B)
    p50 = c.row("nav", "p50 ms")
    assert p50 is not None and p50.verdict == "slower" and p50.ci95 is not None and p50.ci95[0] > 1.05
    same = compare(E2B, results("again", 18.4, 20)).row("nav", "p50 ms")
    assert same is not None and same.verdict == "equivalent" and same.ratio == pytest.approx(1.0)


def test_a_tiny_difference_is_equivalent_and_a_wide_interval_inconclusive() -> None:
    close = compare(results("a", 18.40, 20, n=100), results("b", 18.46, 20, n=100)).row("nav", "p50 ms")
    assert close is not None and close.verdict == "equivalent"  # +0.3 %: inside ±5 %, not "slower"
    few = compare(results("a", 18.4, 20, n=6), results("b", 19.4, 20, n=6)).row("nav", "p50 ms")
    assert few is not None and few.verdict == "inconclusive"  # +5.4 % on 6 samples: the interval straddles 1.05
    assert few.ci95 is not None and few.ci95[0] < 1.05 < few.ci95[1]


def test_a_cached_workload_beside_a_fresh_one_is_shown_not_judged() -> None:
    def both(label: str, ms: float) -> Results:
        fresh = results(label, ms, 20, kinds=("nav",), cache_prompt=False)
        cached = results(label, ms / 4, 20, kinds=("nav",)).workloads[0]
        renamed = cached.model_copy(update={"workload": cached.workload.model_copy(update={"name": "nav-cached"})})
        return fresh.model_copy(update={"workloads": [*fresh.workloads, renamed]})

    c = compare(both("a", 18.4), both("b", 30.0))
    assert [(w.workload, w.cache_mode, w.judged) for w in c.workloads] == [
        ("nav", "fresh", True),
        ("nav-cached", "cached", False),
    ]
    cached = both("b", 30.0).workloads[1].metrics
    assert cached.cache_share == pytest.approx(60 / 62)
    assert any("mostly decode" in w for w in cached.warnings)


def test_drift_beyond_the_tolerance_makes_the_verdicts_untrusted() -> None:
    steady = compare(E2B, E4B, after=results("gemma-4-E2B", 18.5, 20)).workload("nav")
    assert steady is not None and steady.drift is not None and steady.trusted
    moved = compare(E2B, E4B, after=results("gemma-4-E2B", 21.0, 20)).workload("nav")
    assert moved is not None and moved.drift is not None and not moved.trusted
    assert moved.drift.ratio == pytest.approx(21.0 / 18.4, rel=0.02)
    assert "no verdict here is trustworthy" in moved.warnings[0]


@pytest.mark.parametrize(
    ("candidate", "judgment", "status"),
    [
        (results("c", 24, adherent=18, vram=Verdict.HEALTHY), Judgment.BETTER, Status.REJECT),  # 90 % < 95 %
        (E4B, None, Status.PENDING),  # a person has not judged describe yet
        (E4B, Judgment.BETTER, Status.ADOPT),
        (E4B, Judgment.SAME, Status.REJECT),
        (results("c", 24, adherent=20, vram=Verdict.WARN), Judgment.BETTER, Status.REJECT),  # out of 5.5-7.5
        (results("c", 24, adherent=20, vram=None), Judgment.BETTER, Status.INCONCLUSIVE),  # a GPU, no reading
        (results("c", 24, adherent=20, vram=None, gpu=None), Judgment.BETTER, Status.ADOPT),  # no GPU: n/a
        (results("c", 24, adherent=20, vram=Verdict.HEALTHY, describe=" \n "), Judgment.BETTER, Status.REJECT),
    ],
)
def test_the_user_plans_rule(candidate: Results, judgment: Judgment | None, status: Status) -> None:
    assert decide(Decision(), candidate, judgment).status is status


def test_latency_is_a_gate_only_when_the_plan_says_so() -> None:
    assert decide(Decision(), E4B, Judgment.BETTER).status is Status.ADOPT
    gated = decide(Decision(latency_gate_p50_ms=20.0), E4B, Judgment.BETTER)
    assert gated.status is Status.REJECT and any("nav p50" in r and r.startswith("NOT met") for r in gated.reasons)
    straddled = decide(Decision(latency_gate_p50_ms=24.5), E4B, Judgment.BETTER)  # p50 interval 24.0-25.0
    assert straddled.status is Status.INCONCLUSIVE
    assert any(r.startswith("INCONCLUSIVE: nav p50") and "straddles" in r for r in straddled.reasons)


def test_latency_must_not_regress_uses_the_verdict_and_the_drift() -> None:
    rule = Decision(latency_must_not_regress=True)
    slower = decide(rule, E4B, Judgment.BETTER, comparison=compare(E2B, E4B))
    assert slower.status is Status.REJECT
    same = results("c", 18.4, 20, vram=Verdict.HEALTHY)
    assert decide(rule, same, Judgment.BETTER, comparison=compare(E2B, same)).status is Status.ADOPT
    drifted = compare(E2B, same, after=results("gemma-4-E2B", 22.0, 20))
    outcome = decide(rule, same, Judgment.BETTER, comparison=drifted)
    assert outcome.status is Status.INCONCLUSIVE
    assert any("drifted" in r for r in outcome.reasons)


def test_a_rule_that_cannot_apply_is_not_applicable_never_not_met() -> None:
    describe_only = results("c", 24, adherent=0, kinds=("describe",), gpu=None)
    outcome = decide(Decision(min_schema_adherence=0.0), describe_only, Judgment.BETTER)
    assert outcome.status is Status.ADOPT
    assert outcome.reasons[0] == "not applicable: schema adherence: the plan has no nav workload"
    assert outcome.reasons[2].startswith("not applicable: VRAM in band: no GPU on this host")
    nothing = decide(Decision(describe_must_improve=False, vram_in_band=False, max_degenerate_share=1.0),
                     results("c", 24, adherent=0, kinds=()), None)  # fmt: skip
    assert nothing.status is Status.INCONCLUSIVE  # no rule applied: no verdict stronger than its data


def test_degenerate_answers_are_counted_apart_from_errors_and_reject() -> None:
    blank = results("c", 24, adherent=20, vram=Verdict.HEALTHY, describe="   ")
    m = blank.workloads[1].metrics
    assert (m.degenerate, m.errors, m.ok, m.degenerate_kinds) == (20, 0, 0, {"empty": 20})
    assert m.client_latency_ms is None  # not timed: whitespace is not an answer
    outcome = decide(Decision(), blank, Judgment.BETTER)
    assert outcome.status is Status.REJECT
    assert "NOT met: describe: 20 of 20 answers degenerate (20 empty) > 5%" in outcome.reasons
    row = compare(E2B, blank).row("describe", "degenerate answers")
    assert row is not None and (row.baseline, row.candidate, row.verdict) == (0.0, 20.0, "worse")


def test_markdown_report_golden() -> None:
    comparison = compare(E2B, E4B, after=results("gemma-4-E2B", 20.5, 20))  # drifted: the verdicts are untrusted
    outcome = decide(Decision(), E4B, Judgment.BETTER, "sharper", comparison)
    text = render_markdown([E2B, E4B], comparison, outcome)
    if os.environ.get("SWAPBENCH_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_the_dry_run_warns_about_rules_that_cannot_apply_or_be_met() -> None:
    nav_plan = rule_warnings(Decision(latency_gate_p50_ms=20.0, latency_must_not_regress=True), {"nav", "describe"},
                             gpu_read=True, has_band=True, has_baseline=False, samples=5)  # fmt: skip
    assert nav_plan == [
        "latency_gate_p50_ms can never be met: the p50's 95 % interval needs 6 samples, the plan takes 5",
        "latency_must_not_regress can never be met: the plan measures no baseline to compare with",
    ]
    describe_only = rule_warnings(Decision(latency_gate_p50_ms=20.0), {"describe"}, gpu_read=False, has_band=True,
                                  has_baseline=True, samples=20)  # fmt: skip
    assert describe_only == [
        "min_schema_adherence: no nav workload, so it is not applicable",
        "vram_in_band: no GPU is read on this host now, so it would not be applicable",
        "latency rules: no nav workload, so they are not applicable",
    ]
    assert rule_warnings(Decision(), {"nav", "describe"}, gpu_read=True, has_band=True, has_baseline=True,
                         samples=20) == []  # fmt: skip


def test_review_fixes_gate_vram_old_files_and_cached_adherence() -> None:
    # the gate judges every nav workload: a NOT met is never hidden behind a short one
    short = results("c", 24, 20, n=4, vram=Verdict.HEALTHY)
    slow = results("c", 100, 20, vram=Verdict.HEALTHY)
    two = slow.model_copy(update={"workloads": [
        short.workloads[0].model_copy(update={"workload": short.workloads[0].workload.model_copy(
            update={"name": "nav-short"})}), *slow.workloads]})  # fmt: skip
    assert decide(Decision(latency_gate_p50_ms=50.0), two, Judgment.BETTER).status is Status.REJECT
    # a band but no peak read: INCONCLUSIVE, never "no band"
    fp = Footprint(resident_mib=None, peak_mib=None, device_total_mib=16000, pre_launch_used_mib=7000,
                   source="nvml-process", verdict=Verdict.UNKNOWN)  # fmt: skip
    unread = E4B.model_copy(update={"vram": VramReport(footprint=fp)})
    outcome = decide(Decision(), unread, Judgment.BETTER)
    assert outcome.status is Status.INCONCLUSIVE and "INCONCLUSIVE: VRAM footprint not read" in outcome.reasons[2]
    # a results file written before frames (no frames_sha256) compares with one on the same single image
    assert (
        E2B.frames_sha256 is None and compare(E2B, E4B.model_copy(update={"frames_sha256": "a" * 64})).differences == []
    )
    # an old file's empty answers are told apart when it is re-read
    blank = results("old", 20, 20, describe="")
    old = blank.model_copy(update={"workloads": [w.model_copy(update={"samples": [
        s.model_copy(update={"degenerate": None}) for s in w.samples]}) for w in blank.workloads]})  # fmt: skip
    assert reanalysed(old).workloads[1].metrics.degenerate == 20
    # schema adherence counts a cached nav too (the contract does not depend on the cache)
    cached_bad = results("c", 24, adherent=10, vram=Verdict.HEALTHY, cache_prompt=True)
    fresh_ok = results("c", 24, adherent=20, vram=Verdict.HEALTHY, cache_prompt=False)
    renamed = cached_bad.workloads[0].model_copy(
        update={"workload": cached_bad.workloads[0].workload.model_copy(update={"name": "nav-cached"})}
    )
    both = fresh_ok.model_copy(update={"workloads": [*fresh_ok.workloads, renamed]})
    assert decide(Decision(), both, Judgment.BETTER).status is Status.REJECT


def test_a_verify_detail_from_a_server_cannot_break_the_markdown_table() -> None:
    """A detail quotes what a server said (an HTTP body): its pipes and line breaks stay inside the cell."""
    said = Outcome(name="GET http://127.0.0.1:8772/health", status=OutcomeStatus.FAIL,
                   detail='HTTP 503, expected 200: {"error": "a|b"}\nretry')  # fmt: skip
    swap = SwapReport(run_id="r", status=SwapStatus.COMPLETE, checks=[], verify=[said], spans=[], downtime=None)
    rows = [line for line in render_markdown([E2B], swap=swap).splitlines() if "8772/health" in line]
    assert rows == ['| GET http://127.0.0.1:8772/health | fail | HTTP 503, expected 200: {"error": "a\\|b"} retry |']
