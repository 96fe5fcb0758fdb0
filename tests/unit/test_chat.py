"""The chat kind: its JSONL prompts file, its pass/fail score, and how the metrics, comparison and decision
read it (pure: core/kinds/chat.py, and the prepare step that reads the file)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from swapbench.core.bench import interpret
from swapbench.core.compare import compare
from swapbench.core.decision import Status, decide, rule_warnings
from swapbench.core.kinds.chat import PASSED, ChatLine, read_lines
from swapbench.core.metrics import workload_metrics
from swapbench.core.results import Exchange, Results, WorkloadResult
from swapbench.errors import InputError, PlanError
from swapbench.plan.load import LoadedPlan, load_plan
from swapbench.plan.models import Decision, Target
from swapbench.report.markdown import render_markdown
from swapbench.workloads.requests import prepare_workloads
from tests.unit.test_verdict import results

LINES = [
    {"prompt": "What is 2+2? Answer with the digit only.", "expected": "4"},
    {"prompt": "Name a primary colour.", "regex": "(?i)red|blue|yellow", "system": "Answer in one word."},
    {"prompt": "Say hello."},
]


def write_prompts(tmp_path: Path, lines: Sequence[object] | str, name: str = "prompts.jsonl") -> Path:
    text = lines if isinstance(lines, str) else "\n".join(json.dumps(line) for line in lines) + "\n"
    (tmp_path / name).write_text(text)
    return tmp_path / name


def chat_plan(tmp_path: Path, extra: str = "", decision: str = "") -> LoadedPlan:
    write_prompts(tmp_path, LINES)
    (tmp_path / "plan.toml").write_text(
        '[[workloads]]\nname = "qa"\nkind = "chat"\nprompts = "prompts.jsonl"\nsystem = "Be brief."\n'
        f"{extra}\n[baseline]\nlabel = 'b'\nurl = 'http://127.0.0.1:11435'\n{decision}"
    )
    return load_plan(tmp_path / "plan.toml")


def test_a_prompts_file_becomes_one_text_only_body_per_line(tmp_path: Path) -> None:
    loaded = chat_plan(tmp_path)
    assert loaded.plan.image is None  # text only: the plan needs no [image]
    frames, [work] = prepare_workloads(loaded, Target(label="b", url="http://127.0.0.1:11435"))
    assert frames is None and work.itemised and not work.framed
    users = [b["messages"][-1]["content"] for b in work.bodies]
    assert users == [[{"type": "text", "text": line["prompt"]}] for line in LINES]
    systems = [b["messages"][0] for b in work.bodies]
    assert systems == [{"role": "system", "content": s} for s in ("Be brief.", "Answer in one word.", "Be brief.")]
    assert {b["max_tokens"] for b in work.bodies} == {256}
    info = work.info
    assert info.kind == "chat" and info.image is False and [s.key for s in info.scores] == ["passed"]
    assert info.prompt == "3 prompts from prompts.jsonl (2 with an expected answer or regex)"
    assert info.prompt_sha256 == __import__("hashlib").sha256((tmp_path / "prompts.jsonl").read_bytes()).hexdigest()


def test_each_answer_is_scored_against_its_own_line(tmp_path: Path) -> None:
    _, [work] = prepare_workloads(chat_plan(tmp_path), Target(label="b", url="http://127.0.0.1:11435"))
    answers = [" 4\n", "Purple.", "Hello!", "four", "Blue", None]
    samples = []
    for k, answer in enumerate(answers):
        failed = Exchange(latency_ms=1.0, error="refused")
        ex = Exchange(latency_ms=10.0, http_status=200, content=answer) if answer else failed
        samples.append(interpret(k, k * 10.0, ex, work))
    assert [s.item for s in samples] == [0, 1, 2, 0, 1, 2]
    assert [s.scores for s in samples] == [{"passed": True}, {"passed": False}, {}, {"passed": False},
                                           {"passed": True}, {}]  # fmt: skip
    m = workload_metrics(samples, work.info.scores)
    figure = m.scores["passed"]
    assert (figure.n, figure.passed, figure.share) == (4, 2, 0.5)
    assert m.schema_adherence is None and m.errors == 1


def test_a_failed_request_on_a_checked_line_fails_it(tmp_path: Path) -> None:
    _, [work] = prepare_workloads(chat_plan(tmp_path), Target(label="b", url="http://127.0.0.1:11435"))
    sample = interpret(0, 0.0, Exchange(latency_ms=1.0, error="connection reset"), work)
    assert sample.scores == {"passed": False} and sample.item == 0


@pytest.mark.parametrize(
    ("line", "answer", "passed"),
    [
        ({"prompt": "p", "expected": "Paris"}, "  Paris\n", True),
        ({"prompt": "p", "expected": "Paris"}, "paris", False),  # exact: case counts
        ({"prompt": "p", "expected": "Paris"}, "It is Paris.", False),
        ({"prompt": "p", "regex": r"\bParis\b"}, "It is Paris.", True),  # a regex is searched for
        ({"prompt": "p", "regex": r"^Paris$"}, "It is Paris.", False),
        ({"prompt": "p", "expected": "Paris"}, None, False),
        ({"prompt": "p"}, "anything", None),
    ],
)
def test_expected_is_exact_and_a_regex_is_searched(line: dict[str, str], answer: str | None, passed: bool) -> None:
    assert ChatLine.model_validate(line).passed(answer) is passed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt": "a"}\nnot json\n', "W, line 2: not a JSON object: Expecting value: line 1 column 1 (char 0)"),
        ('["a"]\n', "W, line 1: a JSON list, not an object"),
        ('{"prompt": "a", "expect": "b"}\n', "W, line 1: unknown key 'expect'"),
        ('{"prompt": 3}\n', "W, line 1: 'prompt' is a int, not a string"),
        ('{"expected": "b"}\n', "W, line 1: no prompt"),
        ('{"prompt": "  "}\n', "W, line 1: no prompt"),
        ('\n{"prompt": "a", "expected": "b", "regex": "c"}\n', 'W, line 2: both "expected" and "regex"'),
        (
            '{"prompt": "a", "regex": "("}\n',
            "W, line 1: regex '(' does not compile: missing ), unterminated subpattern at position 0",
        ),
        ("\n\n", "W: the file holds no prompt"),
    ],
)
def test_a_bad_line_is_named_with_what_to_do(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        read_lines(text.encode(), "W")
    assert info.value.message == message and info.value.hint


def test_a_file_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(InputError) as info:
        read_lines(b'{"prompt": "\xff"}', "W")
    assert info.value.message.startswith("W: the file is not UTF-8 text")


def test_a_missing_prompts_file_names_its_key(tmp_path: Path) -> None:
    loaded = chat_plan(tmp_path)
    (tmp_path / "prompts.jsonl").unlink()
    with pytest.raises(InputError) as info:
        prepare_workloads(loaded, Target(label="b", url="http://127.0.0.1:11435"))
    assert info.value.message == f"workloads[0].prompts: prompts file {tmp_path / 'prompts.jsonl'} does not exist"


def test_a_bad_line_in_the_plans_file_names_the_key_and_the_line(tmp_path: Path) -> None:
    loaded = chat_plan(tmp_path)
    write_prompts(tmp_path, '{"prompt": "a"}\n{"prompt": "b", "regex": "["}\n')
    with pytest.raises(InputError) as info:
        prepare_workloads(loaded, Target(label="b", url="http://127.0.0.1:11435"))
    assert info.value.message.startswith("workloads[0].prompts (prompts.jsonl), line 2: regex '[' does not compile")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("image = true", "workloads[0]: chat workloads are text-only: remove image = true"),
        ("prompt = 'x'", "workloads[0]: prompt applies to nav and describe workloads only"),
        ("json_schema = 's.json'", "workloads[0]: json_schema applies to nav workloads only"),
    ],
)
def test_a_chat_workload_refuses_what_other_kinds_take(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(PlanError) as info:
        chat_plan(tmp_path, extra)
    assert message in info.value.message


def chat_results(label: str, passed: list[bool | None], base_ms: float = 20.0) -> Results:
    """A results file of one chat workload whose answers pass (True), fail (False) or are not checked (None)."""
    shell = results(label, base_ms, adherent=0, n=len(passed), kinds=("describe",))
    described = shell.workloads[0]
    samples = [s.model_copy(update={"scores": {} if p is None else {"passed": p}, "item": i})
               for i, (s, p) in enumerate(zip(described.samples, passed, strict=True))]  # fmt: skip
    info = described.workload.model_copy(update={"name": "qa", "kind": "chat", "image": False,
                                                 "scores": [PASSED]})  # fmt: skip
    work = WorkloadResult(workload=info, warmup=[], samples=samples, metrics=workload_metrics(samples, info.scores))
    return shell.model_copy(update={"workloads": [work]})


def test_the_comparison_shows_the_pass_rate_of_both() -> None:
    base = chat_results("base", [True] * 8 + [None] * 2)
    cand = chat_results("cand", [True] * 6 + [False] * 2 + [None] * 2)
    rows = {r.metric: r for r in compare(base, cand).workloads[0].rows}
    assert (rows["pass rate"].baseline, rows["pass rate"].candidate, rows["pass rate"].verdict) == (1.0, 0.75, "worse")
    assert "schema adherence" not in rows


@pytest.mark.parametrize(
    ("passed", "state", "detail"),
    [
        ([True] * 9 + [False], "met", "pass rate 90% >= 80% (qa, 9 of 10 checked answers)"),
        ([True] * 7 + [False] * 3, "NOT met", "pass rate 70% < 80% (qa, 7 of 10 checked answers)"),
        (
            [None] * 10,
            "INCONCLUSIVE",
            "pass rate (qa): no answer was checked (no line gives an expected answer or regex)",
        ),
    ],
)
def test_min_pass_rate_is_the_chat_kinds_rule(passed: list[bool | None], state: str, detail: str) -> None:
    rule = Decision(min_pass_rate=0.8, describe_must_improve=False, vram_in_band=False)
    outcome = decide(rule, chat_results("cand", passed))
    assert outcome.reasons == [
        "not applicable: schema adherence: the plan has no nav workload",
        f"{state}: {detail}",
        "met: qa: no degenerate answer in 10",
    ]
    assert outcome.status is {"met": Status.ADOPT, "NOT met": Status.REJECT, "INCONCLUSIVE": Status.INCONCLUSIVE}[state]


def test_min_pass_rate_without_a_chat_workload_is_not_applicable() -> None:
    rule = Decision(min_pass_rate=0.8, describe_must_improve=False, vram_in_band=False)
    outcome = decide(rule, results("cand", 20.0, adherent=20))
    assert "not applicable: pass rate: the plan has no chat workload" in outcome.reasons
    assert rule_warnings(rule, {"nav"}, gpu_read=False, has_band=False, has_baseline=True, samples=20) == [
        "min_pass_rate: no chat workload, so it is not applicable"
    ]


def test_the_report_lists_the_lines_the_candidate_failed() -> None:
    base = chat_results("base", [True] * 8 + [None] * 2)
    cand = chat_results("cand", [True] * 2 + [False] * 7 + [None])
    text = render_markdown([base, cand], compare(base, cand), None)
    section = text[text.index("## cand: qa: the chat lines") :].split("\n## ")[0]
    answer = "A red box on a grey path."
    assert section.splitlines()[2:10] == [
        "- 2 of 9 checked answers passed (22%)",
        *[f"- failed: line {i + 1} of the prompts file (sample {i + 1}): answered {answer!r}" for i in range(2, 7)],
        "- … and 2 more failed answers (swapbench export has them all)",
    ]
    assert "## base: qa: the chat lines\n\n- 8 of 8 checked answers passed (100%)\n\n" in text
