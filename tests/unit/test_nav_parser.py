"""The nav contract on recorded model outputs: strategy 1, 2, 3 (a failure) or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from swapbench.core.kinds.nav import DEFAULT_SCHEMA, build_prompt
from swapbench.core.results import ParseOutcome
from swapbench.workloads.nav import check_user_outcome, parse_nav

CASES = [
    ('{"action": "left"}', 1, {"action": "left"}),
    ('  {"action":"stop"}\n', 1, {"action": "stop"}),
    # Recorded from SmolLM2-135M on the rig: valid object, then more text.
    ('{\n  "action": "forward",\n  "type": "action"\n}\n\nA', 2, {"action": "forward", "type": "action"}),
    ('```json\n{"action": "right"}\n```', 2, {"action": "right"}),
    ('Sure! Here it is: {"action": "back"} hope it helps', 2, {"action": "back"}),
    ('{"action": "fly"} no wait {"action": "left"}', 2, {"action": "left"}),
    ("I think we should go left here.", 3, {"action": "left"}),
    ('{"action": "jump"}', None, None),
    ("\r\n\r\n\r\n", None, None),
    ("", None, None),
    ("The weather is nice.", None, None),
]


@pytest.mark.parametrize(("content", "strategy", "value"), CASES)
def test_strategies(content: str, strategy: int | None, value: Any) -> None:
    outcome = parse_nav(content, DEFAULT_SCHEMA)
    assert outcome.strategy == strategy
    assert outcome.value == value
    assert outcome.adheres is (strategy in (1, 2))


def test_without_schema_any_object_is_accepted() -> None:
    assert parse_nav('{"steer": 0.3}', None).strategy == 1
    assert parse_nav("[1, 2]", None).strategy is None


def test_schema_error_is_reported() -> None:
    outcome = parse_nav('{"action": "jump"}', DEFAULT_SCHEMA)
    assert outcome.error is not None and "jump" in outcome.error


def test_default_prompt_names_every_action() -> None:
    prompt = build_prompt(goal="the red box")
    assert "the red box" in prompt
    for action in DEFAULT_SCHEMA["properties"]["action"]["enum"]:
        assert f'"{action}"' in prompt


def test_user_outcome_checks_strategy_and_schema() -> None:
    assert check_user_outcome(({"action": "left"}, 1), DEFAULT_SCHEMA).adheres
    assert check_user_outcome(({"action": "jump"}, 1), DEFAULT_SCHEMA) == ParseOutcome(
        strategy=1, value={"action": "jump"}, schema_ok=False
    )
    assert not check_user_outcome(("left", 3), DEFAULT_SCHEMA).adheres
    assert check_user_outcome((None, None), None).strategy is None
    with pytest.raises(TypeError, match="must return"):
        check_user_outcome({"action": "left"}, None)
    with pytest.raises(TypeError, match="must return"):
        check_user_outcome(({"action": "left"}, 4), None)
