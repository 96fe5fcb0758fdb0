"""Thinking-leak detector: reasoning or chat-template markers that reached the answer.

With `enable_thinking: false` honoured (it needs `--jinja`), none of these should appear. A leak means the
latency numbers include hidden reasoning tokens, or the template is wrong for the model.
"""

from __future__ import annotations

from swapbench.core.results import ThinkingLeak

# Order matters only for which marker is reported first; the longest specific markers come first.
THINKING_MARKERS: tuple[str, ...] = (
    "<|channel|>analysis<|message|>",  # harmony (gpt-oss)
    "<|channel>",  # Gemma 4 thought channel: <|channel>thought ... <channel|>
    "<channel|>",
    "<|think|>",
    "<think>",
    "</think>",
    "<|turn>",
    "<turn|>",
    "<start_of_turn>",  # Gemma 2/3 turn markers: the template did not stop the model
    "<end_of_turn>",
)


def detect_thinking(content: str | None, reasoning_content: str | None) -> ThinkingLeak | None:
    """The first marker found in the content, or a non-empty reasoning_content; None when clean."""
    if content:
        for marker in THINKING_MARKERS:
            if marker in content:
                return ThinkingLeak(marker=marker, where="content")
    if reasoning_content and reasoning_content.strip():
        return ThinkingLeak(marker="reasoning_content", where="reasoning_content")
    return None
