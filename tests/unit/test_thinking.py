"""The thinking-leak detector on recorded contents."""

from __future__ import annotations

import pytest

from swapbench.core.thinking import THINKING_MARKERS, detect_thinking


@pytest.mark.parametrize("marker", THINKING_MARKERS)
def test_each_marker_is_found(marker: str) -> None:
    leak = detect_thinking(f'{marker}hmm {{"action": "left"}}', None)
    assert leak is not None and leak.where == "content"


def test_gemma4_thought_channel() -> None:
    leak = detect_thinking('<|channel>thought\nThe road is clear.<channel|>{"action": "forward"}', None)
    assert leak is not None and leak.marker == "<|channel>"


def test_harmony_reported_as_such() -> None:
    leak = detect_thinking("<|channel|>analysis<|message|>We need to pick.", None)
    assert leak is not None and leak.marker == "<|channel|>analysis<|message|>"


def test_reasoning_content_counts() -> None:
    leak = detect_thinking('{"action": "left"}', "Let me think about the road.")
    assert leak is not None and leak.where == "reasoning_content"


@pytest.mark.parametrize(("content", "reasoning"), [('{"action": "left"}', None), ("I think so.", "  "), (None, None)])
def test_clean_answers(content: str | None, reasoning: str | None) -> None:
    assert detect_thinking(content, reasoning) is None
