"""Comparison, decision and report.md on fixed results: refusals name the field, the rule is the user plan's,
the Markdown is pinned by a golden file (regenerate with SWAPBENCH_REGEN_GOLDEN=1 and review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swapbench.core.compare import compare
from swapbench.core.decision import Judgment, Status, decide
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
from swapbench.core.vram import Footprint, Verdict
from swapbench.plan.models import Decision
from swapbench.report.markdown import render_markdown

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report.md"


def results(label: str, base_ms: float, adherent: int, n: int = 20, max_tokens: int = 20, image: str = "a" * 64,
            vram: Verdict | None = None, describe: str = "A red box on a grey path.") -> Results:  # fmt: skip
    def samples(kind: str) -> list[Sample]:
        out = []
        for i in range(n):
            ms = base_ms + (i % 5) * 0.5 + (3.0 if i == n - 1 else 0.0)
            parse = ParseOutcome(strategy=1 if i < adherent else 3) if kind == "nav" else None
            content = describe if kind == "describe" else '{"action":"left"}'
            timings = ServerTimings(prompt_ms=2.0, predicted_ms=ms - 4, predicted_n=20)
            ex = Exchange(latency_ms=ms, http_status=200, content=content, timings=timings,
                          usage=Usage(completion_tokens=20))  # fmt: skip
            out.append(Sample(index=i, offset_ms=i * ms, exchange=ex, parse=parse))
        return out

    workloads = []
    for kind in ("nav", "describe"):
        info = WorkloadInfo(name=kind, kind=kind, max_tokens=max_tokens if kind == "nav" else 128, prompt=f"{kind}?",
                            prompt_sha256=kind * 8, system=None, image=True, enable_thinking=False)  # fmt: skip
        s = samples(kind)
        workloads.append(
            WorkloadResult(workload=info, warmup=[], samples=s, metrics=workload_metrics(s, kind == "nav"))
        )
    fp = {"resident_mib": 6000, "peak_mib": 6400, "device_total_mib": 16000, "pre_launch_used_mib": 7000}
    footprint = None if vram is None else Footprint(**fp, source="nvml-process", verdict=vram)
    return Results(
        run_id="r1", label=label, status=RunStatus.COMPLETE,
        provenance=Provenance(swapbench_version="0", plan_path=None, plan_sha256=None, seed=42, warmup=3, samples=n,
                              stream=False, started_at="t0", ended_at="t1"),
        host=HostInfo(hostname="panda", platform="linux", python="3.11", gpu=GpuInfo(name="RTX 5070 Ti", driver="580")),
        server=ServerInfo(url="http://127.0.0.1:11435"),
        image=ImageInfo(path="car-view.jpg", sha256=image, bytes=1, format="JPEG", width=640, height=480),
        workloads=workloads, vram=VramReport(footprint=footprint) if footprint else None,
    )  # fmt: skip


E2B = results("gemma-4-E2B", 18.4, adherent=20)
E4B = results("gemma-4-E4B", 24.0, adherent=20, vram=Verdict.HEALTHY)


def test_compare_refuses_unlike_runs_and_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"image\.sha256"):
        compare(E2B, results("x", 20, 20, image="b" * 64))
    with pytest.raises(ValueError, match=r"workloads\.nav\.max_tokens"):
        compare(E2B, results("x", 20, 20, max_tokens=40))
    forced = compare(E2B, results("x", 20, 20, max_tokens=40), force=True)
    assert forced.differences == ["workloads.nav.max_tokens"]


def test_compare_verdicts() -> None:
    c = compare(E2B, E4B)
    p50 = c.row("nav", "p50 ms")
    assert p50 is not None and p50.verdict == "slower" and p50.ci95 is not None and p50.ci95[0] > 0
    same = compare(E2B, results("again", 18.4, 20)).row("nav", "p50 ms")
    assert same is not None and same.verdict == "no significant difference"


@pytest.mark.parametrize(
    ("candidate", "judgment", "status"),
    [
        (results("c", 24, adherent=18, vram=Verdict.HEALTHY), Judgment.BETTER, Status.REJECT),  # 90 % < 95 %
        (E4B, None, Status.PENDING),  # a person has not judged describe yet
        (E4B, Judgment.BETTER, Status.ADOPT),
        (E4B, Judgment.SAME, Status.REJECT),
        (results("c", 24, adherent=20, vram=Verdict.WARN), Judgment.BETTER, Status.REJECT),  # out of 5.5-7.5
        (results("c", 24, adherent=20, vram=None), Judgment.BETTER, Status.PENDING),  # VRAM unknown
    ],
)
def test_the_user_plans_rule(candidate: Results, judgment: Judgment | None, status: Status) -> None:
    assert decide(Decision(), candidate, judgment).status is status


def test_latency_is_a_gate_only_when_the_plan_says_so() -> None:
    assert decide(Decision(), E4B, Judgment.BETTER).status is Status.ADOPT
    gated = decide(Decision(latency_gate_p50_ms=20.0), E4B, Judgment.BETTER)
    assert gated.status is Status.REJECT and any("nav p50" in r and "NOT met" in r for r in gated.reasons)


def test_markdown_report_golden() -> None:
    text = render_markdown([E2B, E4B], compare(E2B, E4B), decide(Decision(), E4B, Judgment.BETTER, "sharper"))
    if os.environ.get("SWAPBENCH_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
