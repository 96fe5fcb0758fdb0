"""report.html opened in real headless Chromium: it renders, its plots and the embedded image are there, the
headline card is on top with its coloured verdicts, nothing overflows at 800 px; and the plots' labels neither
collide nor leave the frame."""

from __future__ import annotations

import hashlib
import html as html_text
import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image

from swapbench.core.compare import compare
from swapbench.core.decision import Judgment, decide
from swapbench.core.phases import Phase
from swapbench.core.results import ImageInfo, Results
from swapbench.core.steps import Outcome, PhaseSpan, Status, SwapReport, SwapStatus, downtime_split
from swapbench.plan.models import Decision
from swapbench.report.html import latency_figure, render_html, timeline_figure
from tests.conftest import DEMO_IMAGE
from tests.unit.test_verdict import E2B, E4B, results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# where the screenshots stay for a person to look at; the test's own temporary folder unless asked
SHOTS = os.environ.get("SWAPBENCH_SHOTS_DIR")


def chromium(tmp_path: Path, page: Path, *args: str) -> str:
    """Debian's headless Chromium on a local file, nothing fetched from anywhere; its standard output."""
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


def with_real_image(tmp_path: Path) -> tuple[Results, Results]:
    image = tmp_path / "car-view.jpg"
    image.write_bytes(DEMO_IMAGE.read_bytes())
    info = ImageInfo(path=str(image), sha256=hashlib.sha256(image.read_bytes()).hexdigest(), bytes=1, format="JPEG",
                     width=640, height=480)  # fmt: skip
    return E2B.model_copy(update={"image": info}), E4B.model_copy(update={"image": info})


def test_html_is_self_contained(tmp_path: Path) -> None:
    a, b = with_real_image(tmp_path)
    html = render_html([a, b], compare(a, b), decide(Decision(), b, Judgment.BETTER))
    assert html.count("<svg") == 2  # latency plots of nav and describe (no VRAM samples, no swap here)
    assert 'src="data:image/jpeg;base64,' in html and "ADOPT" in html
    assert not re.search(r'(src|href)="https?://', html)  # nothing is fetched from anywhere


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test.sh")
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    a, b = with_real_image(tmp_path)
    page = tmp_path / "report.html"
    page.write_text(render_html([a, b], compare(a, b), decide(Decision(), b)))
    shot = tmp_path / "shot.png"
    chromium(tmp_path, page, "--window-size=1400,2000", f"--screenshot={shot}")
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        pixels = {cast(tuple[int, int, int], p) for _, p in rgb.getcolors(maxcolors=4_000_000) or []}
    assert rgb.size == (1400, 2000)
    assert len(pixels) > 200  # text, plots and the photo: far from a blank page
    # the embedded camera image is drawn: its road grey appears on the page
    assert any(abs(r - 95) < 12 and abs(g - 95) < 12 and abs(b - 100) < 12 for r, g, b in pixels)


def test_each_frame_is_shown_beside_every_target_s_answer_on_it(tmp_path: Path) -> None:
    frames = [
        ImageInfo(path=str(p), sha256=hashlib.sha256(p.read_bytes()).hexdigest(), bytes=1, format="JPEG",
                  width=640, height=480)
        for p in sorted((DEMO_IMAGE.parent / "frames").iterdir())
    ]  # fmt: skip

    def framed(r: Results, say: str) -> Results:
        workloads = []
        for w in r.workloads:
            samples = [
                s.model_copy(update={"frame": s.index % 4, "exchange": s.exchange.model_copy(
                    update={"content": f"{say} on frame {s.index % 4 + 1}" if say else "  "})})
                for s in w.samples
            ]  # fmt: skip
            workloads.append(w.model_copy(update={"samples": samples}))
        return r.model_copy(update={"frames": frames, "image": frames[0], "workloads": workloads})

    html = render_html([framed(E2B, "a box"), framed(E4B, "")])
    for i in (1, 2, 3):
        assert f"frame {i} of 4: frame-{i}.jpg" in html and f"a box on frame {i}" in html
    assert "frame 4 of 4" not in html  # three frames shown
    assert html.count('<p class="bad">(empty answer)</p>') == 3  # the candidate's blank answer on each
    assert html.count('src="data:image/jpeg;base64,') == 3


# --- the headline card, in a browser at 1400 and 800 px ---------------------------------------------------------

CARD = (0xE8, 0xEE, 0xF4)  # the headline card's background
TONES = {"good": (0x00, 0x72, 0xB2), "bad": (0xD5, 0x5E, 0x00), "same": (0x00, 0x9E, 0x73),
         "waiting": (0xCC, 0x79, 0xA7)}  # fmt: skip
RUN_DIR = "/srv/swap runs/20261129-094424-panda"  # a space in it: the command must quote it


def spans() -> list[PhaseSpan]:
    steps = [(Phase.BASELINE_BENCH, "gemma-4-E2B", 0.0, 3.6), (Phase.STOP, "tts", 3.6, 3.9),
             (Phase.STOP, "llama", 3.9, 4.3), (Phase.DRAIN, None, 4.3, 4.4), (Phase.LAUNCH, "gemma-4-E4B", 4.4, 4.5),
             (Phase.READY, "gemma-4-E4B", 4.5, 5.9), (Phase.SMOKE, "gemma-4-E4B", 5.9, 7.4),
             (Phase.BENCH, "gemma-4-E4B", 7.4, 14.9), (Phase.TEARDOWN, "gemma-4-E4B", 14.9, 15.1),
             (Phase.DRAIN_CANDIDATE, "gemma-4-E4B", 15.1, 15.2), (Phase.RESTORE, "llama", 15.2, 16.1),
             (Phase.RESTORE, "tts", 16.1, 17.5), (Phase.VERIFY, None, 17.5, 17.7),
             (Phase.DRIFT_BENCH, "gemma-4-E2B", 17.7, 20.4)]  # fmt: skip
    return [PhaseSpan(phase=p, target=t, start_s=a, end_s=b) for p, t, a, b in steps]


def swap_report() -> SwapReport:
    wav = "WAV 24044 bytes, 12000 frames, 16000 Hz, 1 channel: a detail long enough to wrap at 800 px"
    smoke = "WAV smoke POST http://127.0.0.1:8772/synthesize"
    verify = [Outcome(name="service llama up", status=Status.PASS, detail="running and healthy"),
              Outcome(name=smoke, status=Status.PASS, detail=wav)]  # fmt: skip
    return SwapReport(run_id="20261129-094424-panda", status=SwapStatus.COMPLETE, checks=[], verify=verify,
                      spans=spans(), downtime=downtime_split(spans()))  # fmt: skip


def full_report(tmp_path: Path) -> str:
    """Both workloads (nav slower, describe faster), the swap's timeline, and a decision waiting on a person."""
    a, b = with_real_image(tmp_path)
    quick = results("gemma-4-E4B", 14.0, 20).workloads[1]  # describe, faster than the baseline's 18.4 ms
    b = b.model_copy(update={"workloads": [b.workloads[0], quick]})
    comparison = compare(a, b)
    decision = decide(Decision(), b, comparison=comparison, run_dir=f"'{RUN_DIR}'")
    return render_html([a, b], comparison, decision, swap_report(), decide_dir=f"'{RUN_DIR}'")


def test_the_headline_names_both_models_the_downtime_every_verdict_and_the_decide_command(tmp_path: Path) -> None:
    page = html_text.unescape(full_report(tmp_path))
    card = page[page.index('<section class="headline"') : page.index("</section>")]
    assert "<h1>gemma-4-E4B against gemma-4-E2B</h1>" in card
    assert "production downtime: <b>14.1 s</b>" in card  # first stop 3.6 s to last verify 17.7 s
    assert '<span class="chip tone-bad"><b>p50 ms</b>: slower x1.' in card  # nav
    assert '<span class="chip tone-good"><b>p50 ms</b>: faster x0.' in card  # describe
    assert '<span class="status tone-waiting">PENDING</span>' in card
    for answer in ("better", "same", "worse"):
        assert f"swapbench decide '{RUN_DIR}' --describe {answer}\n" in card
    assert f"`swapbench decide '{RUN_DIR}' --describe better` (or same, or worse)" in card  # the PENDING reason


def probe_width(html: str) -> str:
    """The page with a script that writes, once everything is laid out, how wide the document is; then how wide
    it is with a 1500 px box added, so that the measure is seen to measure."""
    probe = ("<script>addEventListener('load', () => { const d = document.documentElement;"
             " document.body.dataset.width = d.scrollWidth; const box = document.createElement('div');"
             " box.style.width = '1500px'; box.style.height = '1px'; document.body.appendChild(box);"
             " document.body.dataset.widened = d.scrollWidth; });</script>")  # fmt: skip
    return html.replace("</body>", probe + "</body>")


def shot_of(tmp_path: Path, page: Path, width: int, height: int) -> np.ndarray:
    shots = Path(SHOTS) if SHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"report-{width}.png"
    chromium(tmp_path, page, f"--window-size={width},{height}", f"--screenshot={shot}")
    with Image.open(shot) as img:
        return np.asarray(img.convert("RGB"))


def card_rows(pixels: np.ndarray) -> np.ndarray:
    """The rows where the headline card's background fills most of the width."""
    share = (pixels == np.array(CARD)).all(axis=2).mean(axis=1)
    return np.flatnonzero(share > 0.5)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test.sh")
@pytest.mark.parametrize("width", [1400, 800])
def test_the_report_fits_the_window_with_the_headline_card_on_top(tmp_path: Path, width: int) -> None:
    html = full_report(tmp_path)
    probed = tmp_path / "probed.html"
    probed.write_text(probe_width(html))
    dom = chromium(tmp_path, probed, f"--window-size={width},1200", "--virtual-time-budget=5000", "--dump-dom")
    measured = re.search(r'data-width="(\d+)" data-widened="(\d+)"', dom)
    assert measured is not None, dom[-400:]
    assert int(measured[2]) > width  # the probe sees an overflow when there is one
    assert int(measured[1]) <= width  # and the report has none: wide tables scroll inside themselves
    page = tmp_path / "report.html"
    page.write_text(html)
    pixels = shot_of(tmp_path, page, width, 1600)
    rows = card_rows(pixels)
    assert rows.size and rows[0] < 80  # the card opens the page, under the body's margin
    card = pixels[rows[0] : rows[-1] + 1]
    colours = {tuple(int(c) for c in p) for p in np.unique(card.reshape(-1, 3), axis=0)}
    missing = {tone for tone, rgb in TONES.items() if rgb not in colours}
    assert not missing, f"verdict colours not drawn in the card: {sorted(missing)}"


# --- the plots: labels that neither collide nor leave the frame -------------------------------------------------


def extents(fig: Figure, texts: list[Text]) -> list[Bbox]:
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    return [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]


def shown_ticks(fig: Figure, axis_labels: list[Text], ticks: list[float], lim: tuple[float, float]) -> list[Bbox]:
    inside = [t for t, at in zip(axis_labels, ticks, strict=True) if min(lim) <= at <= max(lim)]
    return extents(fig, inside)


@pytest.mark.parametrize(("fast_ms", "slow_ms"), [(240, 330), (250, 130_000), (99_000, 130_000), (1234.5, 1234.9),
                                                  (9_000, 11_000), (15, 16)])  # fmt: skip
def test_latency_tick_labels_never_collide(fast_ms: float, slow_ms: float) -> None:
    """Describe latencies of 100 s gave the CDF nine six-digit labels over 3 inches."""
    a, b = results("a", fast_ms, 20, n=30), results("b", slow_ms, 20, n=30)
    fig = latency_figure([a, b], "describe")
    fig.canvas.draw()
    for ax in fig.axes:
        for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            boxes = shown_ticks(fig, axis.get_ticklabels(), list(axis.get_ticklocs()), lim)
            assert len(boxes) >= 2, f"{ax.get_title()}: fewer than two tick labels"
            clash = [(x, y) for x, y in itertools.combinations(boxes, 2) if x.overlaps(y)]
            assert not clash, f"{ax.get_title()}: tick labels overlap at {fast_ms}/{slow_ms} ms"


def test_timeline_labels_stay_inside_the_figure_and_off_the_bars() -> None:
    fig = timeline_figure(swap_report())
    assert fig is not None
    fig.canvas.draw()
    (ax,) = fig.axes
    frame = ax.get_window_extent()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "baseline-bench gemma-4-E2B" and labels[-1] == "drift-bench gemma-4-E2B"
    legend = ax.get_legend()
    assert legend is not None
    texts = [ax.title, ax.xaxis.label, *ax.get_yticklabels(), *ax.texts, *legend.get_texts()]
    boxes = extents(fig, texts) + shown_ticks(fig, ax.get_xticklabels(), list(ax.get_xticks()), ax.get_xlim())
    for box in boxes:
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1
        assert not box.overlaps(frame) or (frame.x0 <= box.x0 and box.x1 <= frame.x1)  # never across the frame
    assert not legend.get_window_extent().overlaps(frame)  # above the bars, not on them
