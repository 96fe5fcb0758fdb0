"""The blinded judging page: each frame's image above two describe answers named only A and B, a pick per frame,
and the record button. A pure renderer: what to show in, HTML out (its style and script are in the template)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

_ENV = Environment(loader=PackageLoader("swapbench.report"), autoescape=select_autoescape(["html", "j2"]))


@dataclass(frozen=True)
class ShownFrame:
    """One frame as the person sees it: never which target wrote A or B."""

    frame: int  # the key of its pick in the record the page posts
    caption: str
    image_url: str | None  # None: the image is not there any more (or none was sent); `missing` says which
    missing: str
    a: str
    b: str


@dataclass(frozen=True)
class JudgePage:
    run_id: str
    workload: str
    prompt: str
    rule: str
    frames: Sequence[ShownFrame]


def render_judge_page(page: JudgePage) -> str:
    return _ENV.get_template("judge.html.j2").render(page=page)
