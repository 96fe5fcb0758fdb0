"""Blinded judging without the browser: which answers are judged, how picks read and sum up, what the page hides,
and that a decision.json from before blinded judging still loads."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from swapbench.app.judge import open_judging, page_of, read_record
from swapbench.app.verdict import RunFolder
from swapbench.core.blinded import FramePick, Pick, judgment_of, overall
from swapbench.core.judgment import Judgment
from swapbench.core.results import Exchange, ImageInfo, Results
from swapbench.errors import InputError
from swapbench.report.judge_page import render_judge_page
from swapbench.report.results_file import render_json
from tests.unit.test_verdict import results

FRAMES = [ImageInfo(path=f"/frames/f{i}.jpg", sha256=str(i) * 64, bytes=1, format="JPEG", width=640, height=480)
          for i in range(3)]  # fmt: skip


def framed(r: Results, frames: list[int], says: str) -> Results:
    """The results as if its describe samples were sent on these frames, each answer naming its sample."""
    describe = next(w for w in r.workloads if w.workload.kind == "describe")
    samples = [s.model_copy(update={"frame": f, "exchange": s.exchange.model_copy(update={"content": f"{says}{i}"})})
               for i, (s, f) in enumerate(zip(describe.samples, frames, strict=False))]  # fmt: skip
    workloads = [w.model_copy(update={"samples": samples}) if w is describe else w for w in r.workloads]
    return r.model_copy(update={"workloads": workloads, "frames": FRAMES, "image": FRAMES[0]})


def folder_of(tmp_path: Path, *targets: Results) -> Path:
    for r in targets:
        (tmp_path / f"results-{r.label}.json").write_text(render_json(r))
    return tmp_path


def pick(judgment: Judgment) -> FramePick:
    return FramePick(frame=0, image=None, a="x", b="y", pick=Pick.A, judgment=judgment)


@pytest.mark.parametrize(
    ("judged", "expected"),
    [
        ([Judgment.BETTER, Judgment.SAME, Judgment.SAME], Judgment.BETTER),  # won one, lost none
        ([Judgment.BETTER, Judgment.WORSE], Judgment.SAME),  # a tie
        ([Judgment.WORSE, Judgment.WORSE, Judgment.BETTER], Judgment.WORSE),
        ([Judgment.SAME], Judgment.SAME),
    ],
)
def test_frames_won_against_frames_lost_make_the_judgment(judged: list[Judgment], expected: Judgment) -> None:
    assert overall([pick(j) for j in judged]) is expected


def test_a_pick_reads_as_the_candidate_s_judgment() -> None:
    assert judgment_of(Pick.A, candidate_shown_as=Pick.A) is Judgment.BETTER
    assert judgment_of(Pick.A, candidate_shown_as=Pick.B) is Judgment.WORSE
    assert judgment_of(Pick.SAME, candidate_shown_as=Pick.B) is Judgment.SAME


def test_the_frames_both_answered_each_with_its_first_measured_answer(tmp_path: Path) -> None:
    base = framed(results("base", 18, 20, n=4), [0, 1, 0, 1], "base ")
    cand = framed(results("cand", 20, 20, n=5), [0, 0, 2, 1, 1], "cand ")
    judging = open_judging(folder_of(tmp_path, base, cand), random.Random(7))
    assert [(f.frame, f.baseline, f.candidate, f.image) for f in judging.frames] == [
        (0, "base 0", "cand 0", FRAMES[0]),
        (1, "base 1", "cand 3", FRAMES[1]),
    ]  # frame 2: the baseline never answered on it


def test_one_image_is_one_frame_and_an_empty_or_failed_answer_says_so(tmp_path: Path) -> None:
    cand = results("cand", 20, 20, describe="\r\n  \r\n")
    judging = open_judging(folder_of(tmp_path, results("base", 18, 20), cand), random.Random(7))
    assert [(f.frame, f.baseline, f.candidate) for f in judging.frames] == [
        (0, "A red box on a grey path.", "(empty answer)")
    ]
    describe = cand.workloads[1]
    failed = describe.samples[0].model_copy(update={"exchange": Exchange(latency_ms=1.0, error="HTTP 500")})
    broken = cand.model_copy(
        update={"workloads": [cand.workloads[0], describe.model_copy(update={"samples": [failed]})]}
    )
    again = open_judging(folder_of(tmp_path, broken), random.Random(7))
    assert again.frames[0].candidate == "(no answer: the request failed: HTTP 500)"


def test_the_page_names_no_target_and_the_record_says_who_was_which(tmp_path: Path) -> None:
    base = framed(results("base-model", 18, 20, n=3), [0, 1, 2], "b")
    cand = framed(results("cand-model", 20, 20, n=3), [0, 1, 2], "c")
    judging = open_judging(folder_of(tmp_path, base, cand), random.Random(7))
    html = render_judge_page(page_of(judging))
    assert "base-model" not in html and "cand-model" not in html and html.count('<input type="radio"') == 9
    blinded, note = read_record(b'{"picks": {"0": "A", "1": "B", "2": "same"}, "note": "  "}', judging)
    assert note is None and [f.pick for f in blinded.frames] == [Pick.A, Pick.B, Pick.SAME]
    for f, shown in zip(blinded.frames, judging.frames, strict=True):
        candidate_as = Pick.A if f.a == "cand-model" else Pick.B
        assert candidate_as is shown.candidate_shown_as and {f.a, f.b} == {"base-model", "cand-model"}
        assert f.judgment is judgment_of(f.pick, candidate_as)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"picks": {"0": "A"}}', "the record was not taken: no pick for frame 2"),
        (b'{"picks": {"0": "A", "1": "A", "5": "B"}}', "the record was not taken: picks for frames not shown"),
        (b'{"picks": {"0": "C", "1": "A"}}', "the page sent a record that cannot be read: picks.0: Input should be"),
        (b"not json", "the page sent a record that cannot be read: (top level): Invalid JSON"),
    ],
)
def test_an_incomplete_or_unreadable_record_is_refused(tmp_path: Path, body: bytes, message: str) -> None:
    base = framed(results("base", 18, 20, n=2), [0, 1], "b")
    judging = open_judging(
        folder_of(tmp_path, base, framed(results("cand", 20, 20, n=2), [0, 1], "c")), random.Random()
    )
    with pytest.raises(InputError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        read_record(body, judging)


def test_a_decision_json_from_before_blinded_judging_still_loads(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, results("base", 18, 20), results("cand", 20, 20))
    (folder / "decision.json").write_text(json.dumps({"judgment": "better", "note": "by eye"}))
    assert RunFolder.open(folder).judgment() == (Judgment.BETTER, "by eye")
