"""report.html opened in real headless Chromium: it renders, its plots and the embedded image are there, and the
screenshot is not blank."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import cast

import pytest
from PIL import Image

from swapbench.core.compare import compare
from swapbench.core.decision import Judgment, decide
from swapbench.core.results import ImageInfo, Results
from swapbench.plan.models import Decision
from swapbench.report.html import render_html
from tests.conftest import DEMO_IMAGE
from tests.unit.test_verdict import E2B, E4B

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2000", f"--screenshot={shot}",
         page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
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
