"""The chat kind: text prompts from a JSONL file, one request per line, text only.

Each line is a JSON object: `prompt` (required), and optionally `expected` (the answer, surrounding whitespace
aside) or `regex` (searched for in the answer), and `system` (this line's system message). Request k sends
line k mod count, on every target alike. A line that says what to answer scores `passed`; the pass rate is
over those lines, a failed request counting as a failure. Latency, tok/s and degenerate answers are the
generic figures every kind gets.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, ClassVar

from swapbench.core.frozen import Frozen
from swapbench.core.kinds.base import MAX_PROMPT_BYTES, PlanFacts, Prompts, ReadFile, RuleContext, WorkloadKind
from swapbench.core.results import ScoreSpec, WorkloadResult
from swapbench.core.rules import Rule, RuleState, worst
from swapbench.errors import InputError
from swapbench.plan.models import ChatWorkload, Decision, Workload

PASSED = ScoreSpec(key="passed", label="pass rate")
MAX_LINES = 10_000
SHOWN_FAILURES = 5  # in the report: the first failed answers, each cut to ANSWER_CHARS
ANSWER_CHARS = 120
LINE_KEYS = {"prompt", "expected", "regex", "system"}


class ChatLine(Frozen):
    prompt: str
    expected: str | None = None
    regex: str | None = None
    system: str | None = None

    def passed(self, answer: str | None) -> bool | None:
        """Whether the answer is the one this line asks for; None when the line asks for none."""
        if self.expected is not None:
            return answer is not None and answer.strip() == self.expected.strip()
        if self.regex is not None:
            return answer is not None and re.search(self.regex, answer) is not None
        return None


def read_lines(raw: bytes, where: str) -> list[ChatLine]:
    """Every non-blank line of a JSONL prompts file, checked; the first bad line is named with what to do."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: the file is not UTF-8 text ({exc})", hint="save it as UTF-8 JSONL") from exc
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            lines.append(_line(line, f"{where}, line {number}"))
    if not lines:
        raise InputError(f"{where}: the file holds no prompt", hint='write one JSON object per line: {"prompt": "..."}')
    if len(lines) > MAX_LINES:
        raise InputError(f"{where}: {len(lines)} prompts, over the {MAX_LINES} limit", hint="split the file")
    return lines


def _line(line: str, where: str) -> ChatLine:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{where}: not a JSON object: {exc}", hint='write it like {"prompt": "...", '
                         '"expected": "..."}') from exc  # fmt: skip
    if not isinstance(data, dict):
        raise InputError(f"{where}: a JSON {type(data).__name__}, not an object", hint='write {"prompt": "..."}')
    unknown = sorted(set(data) - LINE_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}", hint=f"use {', '.join(sorted(LINE_KEYS))}")
    _strings(data, where)
    if not data.get("prompt", "").strip():
        raise InputError(f"{where}: no prompt", hint='every line needs a non-empty "prompt"')
    if len(data["prompt"].encode("utf-8", "surrogatepass")) > MAX_PROMPT_BYTES:
        raise InputError(f"{where}: a prompt over {MAX_PROMPT_BYTES} bytes", hint="shorten it")
    if "expected" in data and "regex" in data:
        raise InputError(f'{where}: both "expected" and "regex"', hint="give one way to check the answer")
    if "regex" in data:
        try:
            re.compile(data["regex"])
        except re.error as exc:
            raise InputError(
                f"{where}: regex {data['regex']!r} does not compile: {exc}",
                hint="fix it: a Python regular expression, searched for in the answer",
            ) from exc
    return ChatLine.model_validate(data)


def _strings(data: dict[str, Any], where: str) -> None:
    for key, value in data.items():
        if not isinstance(value, str):
            what = type(value).__name__
            raise InputError(f"{where}: {key!r} is a {what}, not a string", hint=f'write "{key}": "..."')


class Chat(WorkloadKind):
    name = "chat"
    default_max_tokens = 256
    scores: ClassVar[tuple[ScoreSpec, ...]] = (PASSED,)

    def prompts(self, workload: Workload, where: str, read: ReadFile) -> Prompts:
        assert isinstance(workload, ChatWorkload)  # the plan's union gives this kind only its own model
        key = f"{where}.prompts"
        raw = read(workload.prompts, key)
        lines = read_lines(raw, f"{key} ({workload.prompts})")
        checked = sum(1 for line in lines if line.expected is not None or line.regex is not None)

        def score(index: int, answer: str | None) -> dict[str, bool]:
            passed = lines[index].passed(answer)
            return {} if passed is None else {PASSED.key: passed}

        return Prompts(
            texts=tuple(line.prompt for line in lines),
            text=f"{len(lines)} prompts from {workload.prompts.name} ({checked} with an expected answer or regex)",
            sha256=hashlib.sha256(raw).hexdigest(),
            score=score,
            systems=tuple(line.system for line in lines),
        )

    def section(self, w: WorkloadResult) -> tuple[str, list[str]] | None:
        """The pass rate in words, and the first lines it failed with what came back."""
        figure = w.metrics.scores.get(PASSED.key)
        if figure is None or not figure.n:
            return None
        failed = [s for s in w.samples if s.scores.get(PASSED.key) is False]
        lines = [f"{figure.passed} of {figure.n} checked answers passed ({figure.share:.0%})"]
        for s in failed[:SHOWN_FAILURES]:
            answer = " ".join((s.exchange.content or "").split())[:ANSWER_CHARS]
            got = f"answered {answer!r}" if s.ok else f"the request failed ({s.exchange.error})"
            lines.append(f"failed: line {(s.item or 0) + 1} of the prompts file (sample {s.index + 1}): {got}")
        if len(failed) > SHOWN_FAILURES:
            lines.append(f"… and {len(failed) - SHOWN_FAILURES} more failed answers (swapbench export has them all)")
        return f"{w.workload.name}: the chat lines", lines

    def rules(self, ctx: RuleContext) -> list[tuple[str, Rule]]:
        if ctx.rule.min_pass_rate is None:
            return []
        return [("min_pass_rate", _pass_rate(ctx.workloads, ctx.rule.min_pass_rate))]

    def rule_warnings(self, rule: Decision, facts: PlanFacts) -> list[tuple[str, str]]:
        if rule.min_pass_rate is not None and not facts.present:
            return [("min_pass_rate", "min_pass_rate: no chat workload, so it is not applicable")]
        return []


def _pass_rate(chats: list[WorkloadResult], line: float) -> Rule:
    if not chats:
        return Rule(state=RuleState.NOT_APPLICABLE, detail="pass rate: the plan has no chat workload")
    found = []
    for w in chats:
        figure = w.metrics.scores.get(PASSED.key)
        if figure is None or figure.share is None:
            found.append(Rule(state=RuleState.INCONCLUSIVE, detail=f"pass rate ({w.workload.name}): no answer was "
                              "checked (no line gives an expected answer or regex)"))  # fmt: skip
            continue
        ok = figure.share >= line
        detail = (f"pass rate {figure.share:.0%} {'>=' if ok else '<'} {line:.0%} ({w.workload.name}, "
                  f"{figure.passed} of {figure.n} checked answers)")  # fmt: skip
        found.append(Rule(state=RuleState.MET if ok else RuleState.NOT_MET, detail=detail))
    return worst(found)


CHAT = Chat()
