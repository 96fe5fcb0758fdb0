"""report.html: one self-contained file — a headline card (the two models, downtime, a coloured verdict per
workload and metric, the decision and the command that completes it), plots (matplotlib, inline SVG), the image
beside each target's describe outputs and the phase timeline. A pure renderer: results in, a string out."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import matplotlib as mpl
import numpy as np

mpl.use("Agg")  # no display: render to SVG only
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from swapbench.core.compare import TOO_FEW, Comparison, MetricDelta, WorkloadComparison
from swapbench.core.decision import DecisionResult, Judgment, Status
from swapbench.core.kinds import SCORE_LEGEND, first_score, kind_of
from swapbench.core.phases import Phase
from swapbench.core.results import ImageInfo, Results, Sample
from swapbench.core.stats import ShiftVerdict
from swapbench.core.steps import SwapReport
from swapbench.core.vram import MIB_PER_GB
from swapbench.plan.models import Band
from swapbench.report.records import recorded_image

_ENV = Environment(loader=PackageLoader("swapbench.report"), autoescape=select_autoescape(["html", "j2"]))
mpl.rcParams["svg.hashsalt"] = "swapbench"  # the same figure, the same SVG: an unchanged report stays unchanged

# Okabe-Ito: told apart with every common colour-vision deficiency; each verdict also says itself in words.
BLUE, VERMILLION, ORANGE = "#0072B2", "#D55E00", "#E69F00"


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})  # no date: same input, same bytes
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _latencies(result: Results, workload: str) -> list[float]:
    w = next((w for w in result.workloads if w.workload.name == workload), None)
    return [s.exchange.latency_ms for s in w.samples if s.usable] if w else []


def _ticks(axis: Axis, integer: bool = False) -> None:
    """At most six ticks, never an offset: the default's seven-plus five-digit labels ran into each other."""
    axis.set_major_locator(MaxNLocator(nbins=5, integer=integer))
    axis.set_major_formatter(ScalarFormatter(useOffset=False))


def latency_figure(results: Sequence[Results], workload: str) -> Figure:
    """CDF, histogram and latency per sample of one workload, every target on the same axes; in seconds once a
    latency reaches 10 s, so that tick labels stay short."""
    fig, (cdf, hist, seq) = plt.subplots(1, 3, figsize=(13, 3.2), layout="constrained")
    series = [(r.label, values) for r in results if (values := _latencies(r, workload))]
    unit, per = ("s", 1000.0) if any(max(v) >= 10_000 for _, v in series) else ("ms", 1.0)
    everything = [v / per for _, values in series for v in values]
    # one set of bins for every target: bins of each target's own narrow range were too thin to be seen
    edges = np.histogram_bin_edges(everything, bins=min(30, max(5, len(everything) // 6))) if series else 10
    for label, values in series:
        scaled = [v / per for v in values]
        ordered = sorted(scaled)
        cdf.step(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post", label=label)
        hist.hist(scaled, bins=edges, alpha=0.6, label=label)
        seq.plot(range(len(scaled)), scaled, marker=".", linewidth=0.8, label=label)
    cdf.set(title=f"{workload}: latency CDF", xlabel=unit, ylabel="share of samples")
    hist.set(title="histogram", xlabel=unit, ylabel="samples")
    seq.set(title="per sample, in order", xlabel="sample", ylabel=unit)
    for axis, integer in ((cdf.xaxis, False), (hist.xaxis, False), (hist.yaxis, True), (seq.xaxis, True),
                          (seq.yaxis, False)):  # fmt: skip
        _ticks(axis, integer)
    for ax in (cdf, hist, seq):
        ax.grid(alpha=0.3)
        if series:  # a legend of nothing is a matplotlib warning
            ax.legend(fontsize=7)
    return fig


def latency_plots(results: Sequence[Results], workload: str) -> str:
    return _svg(latency_figure(results, workload))


def vram_plot(result: Results, band: Band | None) -> str | None:
    if result.vram is None or not result.vram.samples:
        return None
    fig, ax = plt.subplots(figsize=(13, 3))
    samples = result.vram.samples
    ax.plot([s.t_s for s in samples], [s.device_used_mib / MIB_PER_GB for s in samples], label="device used (GB)")
    known = [s for s in samples if s.candidate_mib is not None]
    if known:
        ax.plot([s.t_s for s in known], [(s.candidate_mib or 0) / MIB_PER_GB for s in known], label="candidate (GB)")
    if band is not None:
        ax.axhspan(*band.healthy, color="green", alpha=0.1, label="healthy")
        if band.warn:
            ax.axhspan(*band.warn, color="orange", alpha=0.15, label="warn")
        if band.abort_above is not None:
            ax.axhline(band.abort_above, color="red", linestyle="--", label="abort")
    ax.set(title=f"VRAM of {result.label}", xlabel="s since launch", ylabel="GB")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _svg(fig)


def timeline_figure(swap: SwapReport) -> Figure | None:
    """One bar per phase; the phases are named on the left axis, so no label can run off the frame."""
    if not swap.spans:
        return None
    fig, ax = plt.subplots(figsize=(13, 0.9 + 0.28 * len(swap.spans)), layout="constrained")
    for i, span in enumerate(swap.spans):
        ax.barh(i, span.duration_s, left=span.start_s, color=BLUE if span.ok else VERMILLION)
    names = [f"{span.phase} {span.target or ''}".strip() + ("" if span.ok else " (failed)") for span in swap.spans]
    ax.set_yticks(range(len(names)), labels=names, fontsize=7)
    stops = [s.start_s for s in swap.spans if s.phase is Phase.STOP]
    verifies = [s.end_s for s in swap.spans if s.phase is Phase.VERIFY]
    if stops and verifies:
        ax.axvspan(min(stops), max(verifies), color=ORANGE, alpha=0.15, label="production down")
        ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)  # above, off the bars
    ax.set(title="phases", xlabel="s since start", ylim=(len(names) - 0.5, -0.5))  # first phase on top
    ax.margins(x=0.01)
    ax.grid(axis="x", alpha=0.3)
    return fig


def timeline_plot(swap: SwapReport) -> str | None:
    fig = timeline_figure(swap)
    return None if fig is None else _svg(fig)


FRAMES_SHOWN = 3


def _data_url(info: ImageInfo) -> str | None:
    """An image, embedded, if its file is still there and unchanged (see recorded_image)."""
    raw = recorded_image(info)
    if raw is None:
        return None
    mime = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(info.format, "image/jpeg")
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def image_data_url(results: Sequence[Results]) -> str | None:
    """The first camera frame, embedded (see _data_url)."""
    info = next((r.image for r in results if r.image), None)
    return None if info is None else _data_url(info)


def _answer(samples: Sequence[Sample], frame: int | None, position: int) -> str | None:
    """A target's describe answer on a frame (its first sample that sent it), or its n-th answer without frames."""
    if frame is None or all(s.frame is None for s in samples):  # no frames, or a describe sent without the image
        return samples[position].exchange.content or "" if position < len(samples) else None
    return next((s.exchange.content or "" for s in samples if s.frame == frame), None)


def describe_side_by_side(results: Sequence[Results]) -> list[tuple[str | None, str, list[tuple[str, str | None]]]]:
    """Up to FRAMES_SHOWN rows of (the frame embedded, its caption, each target's describe answer on it)."""
    frames = next((r.frames for r in results if len(r.frames) > 1), [])
    rows = []
    for i in range(FRAMES_SHOWN):
        if frames and i >= len(frames):
            break
        frame = i if frames else None
        answers = [(r.label, _answer(w.samples, frame, i)) for r in results for w in r.workloads
                   if kind_of(w.workload.kind).shows_answers]  # fmt: skip
        if all(a is None for _, a in answers):
            break
        if frames:
            url, caption = _data_url(frames[i]), f"frame {i + 1} of {len(frames)}: {Path(frames[i].path).name}"
        else:  # one image for every answer: shown once, with each target's first answers beside it
            url, caption = (image_data_url(results), "the camera image") if i == 0 else (None, "")
        rows.append((url, caption, answers))
    return rows


class Tone(StrEnum):
    """How a verdict or a decision reads at a glance: one colour each, always beside its words."""

    GOOD = "good"  # faster, better; ADOPT
    BAD = "bad"  # slower, worse; REJECT
    SAME = "same"  # equivalent, same
    UNSURE = "unsure"  # inconclusive, too few samples, a verdict the baseline's drift makes untrustworthy
    WAITING = "waiting"  # PENDING: a person's judgment is missing
    NONE = "none"  # not measured, not judged


_VERDICT_TONES = {
    "faster": Tone.GOOD, "better": Tone.GOOD, "slower": Tone.BAD, "worse": Tone.BAD,
    ShiftVerdict.EQUIVALENT.value: Tone.SAME, "same": Tone.SAME,
    ShiftVerdict.INCONCLUSIVE.value: Tone.UNSURE, TOO_FEW: Tone.UNSURE,
}  # fmt: skip
STATUS_TONES = {Status.ADOPT: Tone.GOOD, Status.REJECT: Tone.BAD, Status.PENDING: Tone.WAITING,
                Status.INCONCLUSIVE: Tone.UNSURE}  # fmt: skip
_DRIFTED = {"faster", "slower", ShiftVerdict.EQUIVALENT.value}  # the verdicts a drifted baseline makes untrusted


def verdict_tone(verdict: str, trusted: bool = True) -> Tone:
    if not trusted and verdict in _DRIFTED:
        return Tone.UNSURE
    return _VERDICT_TONES.get(verdict, Tone.NONE)


@dataclass(frozen=True)
class Chip:
    metric: str
    verdict: str  # the words: the colour only repeats them
    tone: Tone


@dataclass(frozen=True)
class WorkloadVerdicts:
    workload: str
    how: str  # its cache mode, and whether it is judged and trusted
    chips: list[Chip]


@dataclass(frozen=True)
class Headline:
    """What the top of the report says: who was compared, what production paid, every verdict, the decision."""

    title: str
    candidate: str
    baseline: str | None
    downtime: str
    workloads: list[WorkloadVerdicts]
    decision: DecisionResult | None
    decide: list[str]  # the commands that record the describe judgment, one per answer


def _model(result: Results) -> str:
    """A target's label, and the model file its server loaded when the label does not already say it."""
    path = Path(result.server.model_path).name if result.server.model_path else None
    return result.label if path is None or path.startswith(result.label) else f"{result.label} ({path})"


def _chip(row: MetricDelta, trusted: bool) -> Chip:
    words = row.verdict
    if row.ratio is not None and row.verdict in _VERDICT_TONES and row.verdict != TOO_FEW:
        words += f" x{row.ratio:.3f}"
    if not trusted and row.verdict in _DRIFTED:
        words += " (untrusted: drift)"
    return Chip(row.metric, words, verdict_tone(row.verdict, trusted))


def _workload_verdicts(w: WorkloadComparison) -> WorkloadVerdicts:
    how = w.cache_mode + ("" if w.judged else "; shown, not judged") + ("" if w.trusted else "; baseline drifted")
    return WorkloadVerdicts(w.workload, how, [_chip(row, w.trusted) for row in w.rows])


def _downtime(swap: SwapReport | None) -> str:
    if swap is None:
        return "no swap: results compared as they were recorded"
    if swap.downtime is None:
        return "not measured: the timeline lacks a stop or a verify"
    return f"{swap.downtime.total_s:.1f} s"


def headline(results: Sequence[Results], comparison: Comparison | None, decision: DecisionResult | None,
             swap: SwapReport | None, decide_dir: str | None) -> Headline:  # fmt: skip
    """`decide_dir`: the run folder, quoted for a shell, when the decision takes a person's describe judgment."""
    candidate = results[-1]
    baseline = results[0] if len(results) > 1 else None
    commands = [f"swapbench decide {decide_dir} --describe {j.value}" for j in Judgment] if decide_dir else []
    title = f"{candidate.label} against {baseline.label}" if baseline else candidate.label
    return Headline(title, _model(candidate), _model(baseline) if baseline else None, _downtime(swap),
                    [_workload_verdicts(w) for w in comparison.workloads] if comparison else [], decision,
                    commands)  # fmt: skip


_ENV.globals.update(
    tone=verdict_tone, status_tones=STATUS_TONES, first_score=first_score, scores=SCORE_LEGEND, kind=kind_of
)


def render_html(
    results: Sequence[Results],
    comparison: Comparison | None = None,
    decision: DecisionResult | None = None,
    swap: SwapReport | None = None,
    band: Band | None = None,
    decide_dir: str | None = None,
) -> str:
    """`decide_dir`: the run folder, quoted for a shell, for the commands that record the describe judgment."""
    workloads = list(dict.fromkeys(w.workload.name for r in results for w in r.workloads))
    return _ENV.get_template("report.html.j2").render(
        results=results, comparison=comparison, decision=decision, swap=swap,
        headline=headline(results, comparison, decision, swap, decide_dir) if results else None,
        latency={w: latency_plots(results, w) for w in workloads},
        vram=[p for r in results if (p := vram_plot(r, band))], timeline=timeline_plot(swap) if swap else None,
        describe=describe_side_by_side(results),
    )  # fmt: skip
