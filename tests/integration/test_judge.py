"""`swapbench judge` as a person uses it: a real subprocess serving on loopback, driven by headless Chromium through
selenium; the picks land in decision.json and the decision exactly as `decide --describe` records them."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from swapbench.demo.rig import Rig
from tests.helpers import start_swapbench, swapbench

pytestmark = pytest.mark.rig

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = Path("/usr/bin/chromedriver")  # Debian's chromium-driver: selenium never fetches a driver itself
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or not CHROMEDRIVER.exists(),
    reason="chromium and chromium-driver are installed by scripts/test.sh",
)
BASELINE, CANDIDATE = "smollm2-135m", "gemma3-270m"  # the demo's production model and candidate


@pytest.fixture(scope="session")
def demo_run(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real demo run (two describe samples of the baseline, four of the candidate, on the bundled frames)."""
    out = tmp_path_factory.mktemp("judge-demo")
    done = swapbench("demo", "-n", "2", "--output-dir", str(out), timeout_s=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(out.rglob("swap.json")).parent


def copy_of(run: Path, where: Path) -> Path:
    return Path(shutil.copytree(run, where, symlinks=True))


@pytest.fixture
def run_dir(demo_run: Path, tmp_path: Path) -> Path:
    """This test's own copy of the demo's run folder: judging writes decision.json and the report into it."""
    return copy_of(demo_run, tmp_path / "run")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@contextlib.contextmanager
def judging(*args: str, command: tuple[str, ...] = ()) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`swapbench judge ARGS` in the background and the URL it printed; killed at the end if still running."""
    proc = start_swapbench("judge", *args) if not command else subprocess.Popen(
        [*command, "judge", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(args[0]).parent, env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        found = re.search(r"judging page: (http://\S+)", line)
        assert found, f"no URL printed: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield proc, found[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def listening(pid: int) -> set[str]:
    """The addresses the process listens on."""
    return {c.laddr.ip for c in psutil.Process(pid).net_connections("inet") if c.status == psutil.CONN_LISTEN}


def decision_lines(stdout: str, run: Path) -> list[str]:
    """What `decide` prints from the decision on: its status, every reason and the files written (under RUN/)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("decision: "))
    return [line.replace(str(run), "RUN") for line in lines[start:]]


@needs_browser
def test_a_person_judges_blinded_in_a_real_browser(
    demo_run: Path, run_dir: Path, browser: WebDriver, tmp_path: Path
) -> None:
    picks = {0: "A", 1: "B"}  # by label only: which target each is, the page does not say
    with judging(str(run_dir)) as (proc, url):
        assert urlsplit(url).hostname == "127.0.0.1" and listening(proc.pid) == {"127.0.0.1"}
        browser.get(url)
        assert BASELINE not in browser.page_source and CANDIDATE not in browser.page_source
        shown = [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, "section[id^='frame-']")]
        assert shown == ["frame-0", "frame-1"]  # the frames both answered: the baseline measured two
        drawn = "return [...document.images].map((i) => i.complete ? i.naturalWidth : -1)"
        WebDriverWait(browser, 60).until(lambda d: -1 not in d.execute_script(drawn))
        assert browser.execute_script(drawn) == [640, 640]  # each frame's own file, served by judge
        answers = [browser.find_element(By.CSS_SELECTOR, f"#answer-{f}-{side} p").text for f in picks for side in "AB"]
        assert answers.count("(empty answer)") == 2  # the candidate's blank answers, one per frame
        record = browser.find_element(By.ID, "record")
        for frame, side in picks.items():
            assert not record.is_enabled()  # not before every frame has its pick
            browser.find_element(By.ID, f"pick-{frame}-{side}").click()
        browser.find_element(By.ID, "note").send_keys("judged blind")
        record.click()
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "outcome").text.startswith("Recorded"))
        revealed = browser.find_element(By.ID, "reveal-0").text
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 20, stderr  # the demo's candidate answers describe with nothing: REJECT either way
    saved = json.loads((run_dir / "decision.json").read_text())
    frames = saved["blinded"]["frames"]
    assert [(f["frame"], f["pick"]) for f in frames] == list(picks.items())
    assert revealed == f"A was {frames[0]['a']}, B was {frames[0]['b']}"
    for f in frames:  # the recorded order says which label was the candidate's
        assert {f["a"], f["b"]} == {BASELINE, CANDIDATE}
        # ... and it is the order the page showed: the candidate's side is the one with the blank answer
        blank = "A" if answers[2 * f["frame"]] == "(empty answer)" else "B"
        assert f[blank.lower()] == CANDIDATE, (f, answers)
        assert f["judgment"] == ("better" if f[f["pick"].lower()] == CANDIDATE else "worse")
    counts = Counter(f["judgment"] for f in frames)
    lead = counts["better"] - counts["worse"]  # the rule: frames won by the candidate against those lost
    overall = "better" if lead > 0 else "worse" if lead < 0 else "same"
    assert (saved["judgment"], saved["note"]) == (overall, "judged blind")
    assert saved["blinded"]["candidate"] == CANDIDATE and saved["blinded"]["baseline"] == BASELINE
    # exactly what `decide` does with the same verdict
    other = copy_of(demo_run, tmp_path / "decided")
    decided = swapbench("decide", str(other), "--describe", overall, "--note", "judged blind", timeout_s=120)
    assert decided.returncode == 20, decided.stderr
    assert decision_lines(stdout, run_dir) == decision_lines(decided.stdout, other)
    assert f"describe judged {overall}" in stdout


def test_judge_refuses_a_run_without_describe_samples(run_dir: Path) -> None:
    for path in run_dir.glob("results-*.json"):
        data = json.loads(path.read_text())
        data["workloads"] = [w for w in data["workloads"] if w["workload"]["kind"] != "describe"]
        path.write_text(json.dumps(data))
    done = swapbench("judge", str(run_dir), timeout_s=120)
    assert done.returncode == 3, done.stderr
    assert f"error: {run_dir} has no describe samples of both {BASELINE} and {CANDIDATE} to judge" in done.stderr
    assert "what to do: judge a run whose plan has a describe workload" in done.stderr
    assert "http://" not in done.stdout and not (run_dir / "decision.json").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::"])
def test_judge_serves_on_loopback_only(run_dir: Path, host: str) -> None:
    done = swapbench("judge", str(run_dir), "--host", host, timeout_s=120)
    assert done.returncode == 2, done.stderr
    assert f"error: --host {host} is not a loopback address" in done.stderr
    assert "http://" not in done.stdout


def test_ctrl_c_while_serving_exits_130_and_writes_nothing(run_dir: Path) -> None:
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    with judging(str(run_dir), "--host", "::1") as (proc, url):
        assert urlsplit(url).hostname == "::1" and listening(proc.pid) == {"::1"}
        with urllib.request.urlopen(url, timeout=60) as page:  # serving: the page is there
            assert page.status == 200
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "error: judging stopped before anything was recorded: nothing was written" in stderr
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
