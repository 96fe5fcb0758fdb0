"""The fleet report in Markdown, HTML (report.html's look), CSV (one row per host and workload) and JSON."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

from swapbench.core.fleet import FleetGroup, FleetHost, FleetReport, FleetWorkload, Pair

_ENV = Environment(loader=PackageLoader("swapbench.report"), autoescape=select_autoescape(["html", "j2"]))
TONES = {"adopt": "good", "reject": "bad", "pending": "waiting", "inconclusive": "unsure",
         "complete": "same", "aborted-restored": "unsure", "not-restored": "bad"}  # fmt: skip
RULE_TEXT = (
    "Adopt only when every host completed its window and decided adopt. Hosts are grouped by GPU and "
    "llama.cpp build; figures of different groups are never averaged or compared with each other."
)
MD_HEADER = (
    "| host | run | outcome | decision | downtime s | VRAM peak MiB | workload | p50 ms | p50 verdict | p95 ms "
    "| p95 verdict | adherence |"
)
MD_ALIGN = "|---|---|---|---|---:|---:|---|---:|---|---:|---|---:|"
CSV_COLUMNS = ["host", "run_id", "gpu", "build", "baseline", "candidates", "outcome", "decision", "downtime_s",
               "vram_peak_mib", "workload", "p50_baseline_ms", "p50_candidate_ms", "p50_verdict",
               "p95_baseline_ms", "p95_candidate_ms", "p95_verdict", "adherence_baseline",
               "adherence_candidate"]  # fmt: skip


@dataclass(frozen=True)
class _Row:
    host: str
    run_id: str
    outcome: str
    outcome_tone: str
    decision: str
    decision_tone: str
    downtime: str
    vram: str
    workload: str
    p50: str
    p50_verdict: str
    p95: str
    p95_verdict: str
    adherence: str


@dataclass(frozen=True)
class _Group:
    title: str
    rows: list[_Row]


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if value is None else fmt.format(value)


def _pair(pair: Pair, fmt: str = "{:.1f}") -> str:
    return f"{_num(pair[0], fmt)} → {_num(pair[1], fmt)}"


def _share(pair: Pair) -> str:
    base, cand = (None if v is None else v * 100 for v in pair)
    return "—" if pair == (None, None) else _pair((base, cand), "{:.0f}%")


def group_title(group: FleetGroup) -> str:
    return f"GPU {group.gpu or 'unknown'} · llama.cpp {group.build or 'unknown'} · {len(group.hosts)} host(s)"


def _rows(host: FleetHost) -> list[_Row]:
    workloads = host.workloads or [FleetWorkload(workload="—", p50_ms=(None, None), p50_verdict="—",
                                                 p95_ms=(None, None), p95_verdict="—")]  # fmt: skip
    decision = host.decision or "none"
    return [_Row(host.host, host.run_id, host.outcome, TONES.get(host.outcome, "none"), decision,
                 TONES.get(decision, "none"), _num(host.downtime_s), _num(host.vram_peak_mib, "{:.0f}"), w.workload,
                 _pair(w.p50_ms), w.p50_verdict, _pair(w.p95_ms), w.p95_verdict, _share(w.adherence))
            for w in workloads]  # fmt: skip


def _groups(report: FleetReport) -> list[_Group]:
    by_host = {h.host: h for h in report.hosts}
    return [_Group(group_title(g), [r for name in g.hosts for r in _rows(by_host[name])]) for g in report.groups]


def render_fleet_html(report: FleetReport) -> str:
    return _ENV.get_template("fleet.html.j2").render(report=report, groups=_groups(report), tones=TONES)


def render_fleet_markdown(report: FleetReport) -> str:
    lines = [
        f"# swapbench fleet report: {report.verdict.upper()}",
        "",
        *(f"- {r}" for r in report.reasons),
        "",
        RULE_TEXT,
    ]
    for group in _groups(report):
        lines += ["", f"## {group.title}", "", MD_HEADER, MD_ALIGN]
        for r in group.rows:
            cells = [r.host, f"`{r.run_id}`", r.outcome, r.decision, r.downtime, r.vram, r.workload, r.p50,
                     r.p50_verdict, r.p95, r.p95_verdict, r.adherence]  # fmt: skip
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    earlier = [(h.host, run) for h in report.hosts for run in h.earlier_runs]
    if earlier:
        lines += ["", "Older windows found and not shown (each host's newest is): "
                  + ", ".join(f"{host} `{run}`" for host, run in earlier) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


def render_fleet_csv(report: FleetReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for h in report.hosts:
        rows: list[FleetWorkload | None] = list(h.workloads) or [None]
        for w in rows:
            figures: list[object] = ["", "", "", "", "", "", "", "", ""]
            if w is not None:
                figures = [w.p50_ms[0], w.p50_ms[1], w.p50_verdict, w.p95_ms[0], w.p95_ms[1], w.p95_verdict,
                           w.adherence[0], w.adherence[1]]  # fmt: skip
            writer.writerow([h.host, h.run_id, h.gpu, h.build, h.baseline, " ".join(h.candidates), h.outcome,
                             h.decision, h.downtime_s, h.vram_peak_mib, w.workload if w else "", *figures])  # fmt: skip
    return buffer.getvalue()
