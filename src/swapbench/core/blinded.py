"""Blinded judging of the describe answers: a person's pick per frame (A, B or same) read as the candidate's
judgment, and the frames' picks summed up into the one judgment the decision takes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import StrEnum

from swapbench.core.frozen import Frozen
from swapbench.core.judgment import Judgment

RULE = (
    "The candidate is judged better when its answer was picked on more frames than the baseline's, worse when on "
    "fewer, and the same when both were picked equally often; frames marked 'same' count for neither."
)


class Pick(StrEnum):
    """What the person chose on one frame: answer A, answer B, or neither over the other."""

    A = "A"
    B = "B"
    SAME = "same"


class FramePick(Frozen):
    """One judged frame: which target's answer was shown as A and which as B, the pick, and what it means."""

    frame: int  # index into the results' frames (0 when the run sent one image)
    image: str | None  # the frame's file as the results recorded it; None: no image was sent
    a: str  # the label of the target whose answer was shown as A
    b: str
    pick: Pick
    judgment: Judgment  # the candidate's: better when its answer was picked


class BlindedJudging(Frozen):
    """decision.json's record of a `swapbench judge` session: the workload, the targets and every frame."""

    workload: str
    baseline: str
    candidate: str
    rule: str = RULE
    frames: list[FramePick]


def judgment_of(pick: Pick, candidate_shown_as: Pick) -> Judgment:
    """The candidate's judgment on one frame, given whether its answer was shown as A or as B."""
    if pick is Pick.SAME:
        return Judgment.SAME
    return Judgment.BETTER if pick is candidate_shown_as else Judgment.WORSE


def overall(frames: Sequence[FramePick]) -> Judgment:
    """The frames summed up by RULE."""
    counts = Counter(f.judgment for f in frames)
    if counts[Judgment.BETTER] > counts[Judgment.WORSE]:
        return Judgment.BETTER
    if counts[Judgment.WORSE] > counts[Judgment.BETTER]:
        return Judgment.WORSE
    return Judgment.SAME
