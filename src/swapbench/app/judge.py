"""`swapbench judge`: a run's describe answers shown blinded, as A and B frame by frame, on a page served on
loopback; the person's picks become the recorded judgment and the decision, exactly as `decide --describe`."""

from __future__ import annotations

import functools
import random
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from pydantic import Field, ValidationError

from swapbench.app.judge_server import Image, JudgeServer, Posted, Reply, loopback
from swapbench.app.verdict import ReportWritten, RunFolder, record_judgment
from swapbench.core.blinded import RULE, BlindedJudging, FramePick, Pick, judgment_of, overall
from swapbench.core.decision import DecisionResult, Judgment
from swapbench.core.frozen import Frozen
from swapbench.core.kinds import kind_of
from swapbench.core.results import ImageInfo, Results, Sample, WorkloadResult
from swapbench.errors import ComparisonRefused, InputError, Interrupted, SwapbenchError
from swapbench.report.judge_page import JudgePage, ShownFrame, render_judge_page
from swapbench.report.records import recorded_image

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
DECIDE_HINT = "or give the verdict without the page: swapbench decide RUN --describe better|same|worse"


@dataclass(frozen=True)
class JudgeRequest:
    run_dir: Path
    host: str = "127.0.0.1"  # loopback only: the server refuses any other address
    port: int = 0  # 0: any free port


@dataclass(frozen=True)
class Judged:
    """One frame to judge: its image, each target's answer on it, and which of them is shown as A."""

    frame: int
    image: ImageInfo | None
    baseline: str
    candidate: str
    candidate_shown_as: Pick

    def shown(self) -> tuple[str, str]:
        """The answers as A and B."""
        return as_a_and_b(self.candidate_shown_as, self.candidate, self.baseline)


def as_a_and_b(candidate_shown_as: Pick, candidate: str, baseline: str) -> tuple[str, str]:
    """A pair of the candidate's and the baseline's (answers, labels) in the order shown."""
    return (candidate, baseline) if candidate_shown_as is Pick.A else (baseline, candidate)


@dataclass(frozen=True)
class Judging:
    folder: RunFolder
    workload: str
    prompt: str
    baseline: str
    candidate: str
    frames: list[Judged]


class RecordForm(Frozen):
    """What the page posts: a pick per frame (keyed by the frame's index) and an optional note."""

    picks: dict[int, Pick]
    note: str | None = Field(None, max_length=2000)


def judge_run(request: JudgeRequest, on_ready: Callable[[str], None]) -> ReportWritten:
    """Serve the page until the person records; then decide and rewrite the report, as `decide` does.
    Ctrl-C while serving ends it with nothing written."""
    loopback(request.host)  # the command line (exit 2) before the run folder's files (3)
    judging = open_judging(request.run_dir, secrets.SystemRandom())
    page = render_judge_page(page_of(judging))
    with JudgeServer(request.host, request.port, page, functools.partial(frame_image, judging)) as server:
        on_ready(server.url)
        return _until_recorded(server, judging)


def open_judging(path: Path, rng: random.Random) -> Judging:
    """The frames on which both the baseline and the candidate answered the describe workload, each with the
    first measured answer of each target on it, A and B drawn from `rng` frame by frame."""
    folder = RunFolder.open(path)
    if len(folder.results) < 2:
        raise InputError(f"{path} holds one target only", hint="judging needs a baseline and a candidate")
    baseline, candidate = folder.results[0], folder.results[-1]
    b_work, c_work = _describe_pair(path, baseline, candidate)
    b_first, c_first = first_answers(b_work), first_answers(c_work)
    shared = sorted(b_first.keys() & c_first.keys())
    if not shared:
        raise InputError(f"{path}: no frame has a describe answer of both {baseline.label} and {candidate.label}",
                         hint=f"measure the describe workload on both targets, {DECIDE_HINT}")  # fmt: skip
    _check_same_images(baseline, candidate, shared, c_work)
    frames = [Judged(i, frame_info(candidate, c_work, i), answer_text(b_first[i]), answer_text(c_first[i]),
                     rng.choice([Pick.A, Pick.B])) for i in shared]  # fmt: skip
    return Judging(folder, c_work.workload.name, c_work.workload.prompt, baseline.label, candidate.label, frames)


def _describe_pair(path: Path, baseline: Results, candidate: Results) -> tuple[WorkloadResult, WorkloadResult]:
    """The first describe workload both targets ran, with samples."""
    ran = {w.workload.name: w for w in baseline.workloads if kind_of(w.workload.kind).judged_by_person and w.samples}
    for w in candidate.workloads:
        if kind_of(w.workload.kind).judged_by_person and w.samples and w.workload.name in ran:
            return ran[w.workload.name], w
    raise InputError(f"{path} has no describe samples of both {baseline.label} and {candidate.label} to judge",
                     hint=f"judge a run whose plan has a describe workload, {DECIDE_HINT}")  # fmt: skip


def first_answers(workload: WorkloadResult) -> dict[int, Sample]:
    """Each frame's first measured sample (frame 0: the one image, or none, when the run sent no frames)."""
    found: dict[int, Sample] = {}
    for sample in workload.samples:
        found.setdefault(sample.frame or 0, sample)
    return found


def answer_text(sample: Sample) -> str:
    if sample.exchange.error is not None:
        return f"(no answer: the request failed: {sample.exchange.error})"
    return (sample.exchange.content or "").strip() or "(empty answer)"


def frame_info(results: Results, workload: WorkloadResult, frame: int) -> ImageInfo | None:
    """The image a frame's requests sent, as the results recorded it (None: the workload sent no image)."""
    if not workload.workload.image:
        return None
    return results.frames[frame] if frame < len(results.frames) else results.image


def _check_same_images(baseline: Results, candidate: Results, frames: list[int], workload: WorkloadResult) -> None:
    """Side by side only makes sense on one image: refuse frames the targets were not both shown."""
    for i in frames:
        b, c = frame_info(baseline, workload, i), frame_info(candidate, workload, i)
        if (b and b.sha256) != (c and c.sha256):
            raise ComparisonRefused(
                f"{baseline.label} and {candidate.label} were not shown the same image on frame {i + 1}",
                hint="judge a run whose targets were measured on the same [image] frames",
            )


def frame_image(judging: Judging, frame: int) -> Image | None:
    """What the page's /frames/N serves: only a frame being judged, from the file the results recorded."""
    info = next((f.image for f in judging.frames if f.frame == frame), None)
    raw = recorded_image(info) if info else None
    return Image(raw, MIME.get(info.format, "application/octet-stream")) if info and raw else None


def page_of(judging: Judging) -> JudgePage:
    """The page's view: frames numbered as the run numbers them (from 1), no target named."""
    shown = []
    for n, f in enumerate(judging.frames, 1):
        name = f" ({Path(f.image.path).name})" if f.image else ""
        there = f.image is not None and recorded_image(f.image) is not None
        missing = (f"(the image is no longer at {f.image.path}, or it changed since the run)" if f.image
                   else "(the requests sent no image)")  # fmt: skip
        a, b = f.shown()
        url = f"/frames/{f.frame}" if there else None
        caption = f"Frame {f.frame + 1}{name}, {n} of {len(judging.frames)} to judge"
        shown.append(ShownFrame(f.frame, caption, url, missing, a, b))
    return JudgePage(judging.folder.results[-1].run_id, judging.workload, judging.prompt, RULE, shown)


def _until_recorded(server: JudgeServer, judging: Judging) -> ReportWritten:
    """Answer the page's records until one is complete; a page that sent less is told what is missing."""
    again = f"judge again with: swapbench judge {shlex.quote(str(judging.folder.path))}"
    while True:
        try:
            posted = server.next_post()
        except KeyboardInterrupt as exc:
            raise Interrupted("judging stopped before anything was recorded: nothing was written", hint=again) from exc
        try:
            blinded, note = read_record(posted.body, judging)
        except InputError as exc:
            posted.answer(Reply.json(HTTPStatus.BAD_REQUEST, {"error": exc.message, "hint": exc.hint}))
            continue
        return _record(posted, judging, blinded, note)


def read_record(body: bytes, judging: Judging) -> tuple[BlindedJudging, str | None]:
    """The posted picks as decision.json's record: who was A and B on each frame, the pick, what it means."""
    try:
        form = RecordForm.model_validate_json(body)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "(top level)"
        raise InputError(f"the page sent a record that cannot be read: {where}: {exc.errors()[0]['msg']}",
                         hint="reload the page and pick again") from exc  # fmt: skip
    unpicked = [f.frame + 1 for f in judging.frames if f.frame not in form.picks]
    unknown = set(form.picks) - {f.frame for f in judging.frames}
    if unpicked or unknown:
        what = f"no pick for frame {', '.join(map(str, unpicked))}" if unpicked else "picks for frames not shown"
        raise InputError(f"the record was not taken: {what}", hint="pick A, B or same on every frame, then record")
    frames = [_frame_pick(f, form.picks[f.frame], judging) for f in judging.frames]
    blinded = BlindedJudging(workload=judging.workload, baseline=judging.baseline, candidate=judging.candidate,
                             frames=frames)  # fmt: skip
    return blinded, (form.note or "").strip() or None


def _frame_pick(f: Judged, pick: Pick, judging: Judging) -> FramePick:
    a, b = as_a_and_b(f.candidate_shown_as, judging.candidate, judging.baseline)
    return FramePick(frame=f.frame, image=f.image.path if f.image else None, a=a, b=b, pick=pick,
                     judgment=judgment_of(pick, f.candidate_shown_as))  # fmt: skip


def _record(posted: Posted, judging: Judging, blinded: BlindedJudging, note: str | None) -> ReportWritten:
    """decision.json and the decision through `decide`'s own path; the page is told the outcome (or the error)."""
    judgment = overall(blinded.frames)
    try:
        written = record_judgment(judging.folder.path, judgment, note, blinded)
    except SwapbenchError as exc:
        posted.answer(Reply.json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": exc.message, "hint": exc.hint}),
                      delivered=True)  # fmt: skip
        raise
    posted.answer(Reply.json(HTTPStatus.OK, _outcome(judgment, written.decision, blinded)), delivered=True)
    return written


def _outcome(judgment: Judgment, decision: DecisionResult | None, blinded: BlindedJudging) -> dict[str, object]:
    """What the page shows once recorded: the judgment, the decision, and at last who was A and B."""
    return {
        "judgment": judgment.value,
        "status": decision.status.value.upper() if decision else "none",
        "reasons": decision.reasons if decision else [],
        "frames": [{"frame": f.frame, "a": f.a, "b": f.b} for f in blinded.frames],
    }
