"""report.html: one self-contained file — plots (matplotlib, inline SVG), the image beside each target's describe
outputs, the decision and the phase timeline. A pure renderer: results in, a string out."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # no display: render to SVG only
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import Figure

from swapbench.core.compare import Comparison
from swapbench.core.decision import DecisionResult
from swapbench.core.phases import Phase
from swapbench.core.results import ImageInfo, Results, Sample
from swapbench.core.steps import SwapReport
from swapbench.core.vram import MIB_PER_GB
from swapbench.plan.models import Band

_ENV = Environment(loader=PackageLoader("swapbench.report"), autoescape=select_autoescape(["html", "j2"]))


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def latency_plots(results: Sequence[Results], workload: str) -> str:
    """CDF, histogram and latency per sample of one workload, every target on the same axes."""
    fig, (cdf, hist, seq) = plt.subplots(1, 3, figsize=(13, 3.2))
    for r in results:
        w = next((w for w in r.workloads if w.workload.name == workload), None)
        values = [s.exchange.latency_ms for s in w.samples if s.usable] if w else []
        if not values:
            continue
        ordered = sorted(values)
        cdf.step(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post", label=r.label)
        hist.hist(values, bins=min(30, max(5, len(values) // 3)), alpha=0.6, label=r.label)
        seq.plot(range(len(values)), values, marker=".", linewidth=0.8, label=r.label)
    cdf.set(title=f"{workload}: latency CDF", xlabel="ms", ylabel="share of samples")
    hist.set(title="histogram", xlabel="ms", ylabel="samples")
    seq.set(title="per sample, in order", xlabel="sample", ylabel="ms")
    for ax in (cdf, hist, seq):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _svg(fig)


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


def timeline_plot(swap: SwapReport) -> str | None:
    if not swap.spans:
        return None
    fig, ax = plt.subplots(figsize=(13, 0.5 + 0.28 * len(swap.spans)))
    for i, span in enumerate(swap.spans):
        color = "tab:blue" if span.ok else "tab:red"
        ax.barh(i, span.duration_s, left=span.start_s, color=color)
        ax.text(span.end_s, i, f" {span.phase} {span.target or ''}", va="center", fontsize=7)
    stops = [s.start_s for s in swap.spans if s.phase is Phase.STOP]
    verifies = [s.end_s for s in swap.spans if s.phase is Phase.VERIFY]
    if stops and verifies:
        ax.axvspan(min(stops), max(verifies), color="orange", alpha=0.12, label="production down")
        ax.legend(fontsize=7, loc="lower right")
    ax.set(title="phases", xlabel="s since start", yticks=[])
    ax.invert_yaxis()  # first phase on top
    return _svg(fig)


FRAMES_SHOWN = 3


def _data_url(info: ImageInfo) -> str | None:
    """An image, embedded, if its file is still there and unchanged (same sha256)."""
    try:
        raw = Path(info.path).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(raw).hexdigest() != info.sha256:
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
                   if w.workload.kind == "describe"]  # fmt: skip
        if all(a is None for _, a in answers):
            break
        if frames:
            url, caption = _data_url(frames[i]), f"frame {i + 1} of {len(frames)}: {Path(frames[i].path).name}"
        else:  # one image for every answer: shown once, with each target's first answers beside it
            url, caption = (image_data_url(results), "the camera image") if i == 0 else (None, "")
        rows.append((url, caption, answers))
    return rows


def render_html(
    results: Sequence[Results],
    comparison: Comparison | None = None,
    decision: DecisionResult | None = None,
    swap: SwapReport | None = None,
    band: Band | None = None,
) -> str:
    workloads = list(dict.fromkeys(w.workload.name for r in results for w in r.workloads))
    return _ENV.get_template("report.html.j2").render(
        results=results, comparison=comparison, decision=decision, swap=swap,
        latency={w: latency_plots(results, w) for w in workloads},
        vram=[p for r in results if (p := vram_plot(r, band))], timeline=timeline_plot(swap) if swap else None,
        describe=describe_side_by_side(results),
    )  # fmt: skip
