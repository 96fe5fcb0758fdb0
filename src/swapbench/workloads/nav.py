"""The nav workload's three-strategy parse contract (its prompt, schema and rules: core/kinds/nav.py).

Strategy 1: the whole content is the expected JSON object.
Strategy 2: the object is extracted from a code fence or from surrounding text.
Strategy 3: a loose keyword fallback. It is recorded, but counts as a failure: the model is not
            following the contract, and production code relying on it would be guessing.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema

from swapbench.core.kinds.nav import DEFAULT_SCHEMA
from swapbench.core.results import ParseOutcome

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def _objects_in(text: str) -> Iterator[Any]:
    """JSON values found in code fences first, then at every '{' of the text."""
    decoder = json.JSONDecoder()
    for fenced in _FENCE.findall(text):
        with contextlib.suppress(json.JSONDecodeError):
            yield json.loads(fenced)
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        yield value


def _schema_errors(value: Any, schema: dict[str, Any] | None) -> str | None:
    if schema is None:
        return None if isinstance(value, dict) else "not a JSON object"
    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    except Exception as exc:  # Phase 0 checked the schema; should it still break, this answer fails, not the run
        return f"the schema could not be applied: {type(exc).__name__}: {exc}"
    return None if error is None else error.message


def _keyword_fallback(content: str, schema: dict[str, Any] | None) -> ParseOutcome | None:
    lowered = content.lower()
    for name, prop in (schema or {}).get("properties", {}).items():
        for word in prop.get("enum", []):
            if isinstance(word, str) and re.search(rf"\b{re.escape(word.lower())}\b", lowered):
                return ParseOutcome(strategy=3, value={name: word}, schema_ok=None, error="loose keyword match")
    return None


def parse_nav(content: str | None, schema: dict[str, Any] | None = DEFAULT_SCHEMA) -> ParseOutcome:
    """Apply strategies 1, 2, 3 in order. `schema=None` accepts any JSON object."""
    if not content or not content.strip():
        return ParseOutcome(strategy=None, error="empty content")
    text = content.strip()
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        pass
    else:
        if _schema_errors(whole, schema) is None:
            return ParseOutcome(strategy=1, value=whole, schema_ok=True)
    first_error = None
    for candidate in _objects_in(text):
        error = _schema_errors(candidate, schema)
        if error is None:
            return ParseOutcome(strategy=2, value=candidate, schema_ok=True)
        first_error = first_error or error
    fallback = _keyword_fallback(text, schema)
    if fallback is not None:
        return fallback
    return ParseOutcome(strategy=None, error=first_error or "no JSON object found")


def user_result_problem(result: Any) -> str | None:
    """Why a user parser's return value is not `(value, strategy)`; None when it is."""
    if not (isinstance(result, tuple) and len(result) == 2):
        return f"returned {_shown(result)}, not a (value, strategy) tuple"
    value, strategy = result
    if not (strategy is None or (type(strategy) is int and strategy in (1, 2, 3))):
        return f"returned strategy {_shown(strategy)}; it must be 1, 2, 3 or None"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return f"returned a value that is not JSON ({type(exc).__name__}: {exc}): {_shown(value)}"
    return None


def _shown(value: Any, limit: int = 120) -> str:
    """A user value for a message: its type and the start of its repr (which may itself fail)."""
    try:
        text = repr(value)
    except Exception:  # a user __repr__
        text = "<unprintable>"
    return f"{type(value).__name__} {text[:limit]}{'...' if len(text) > limit else ''}"


def check_user_outcome(result: Any, schema: dict[str, Any] | None) -> ParseOutcome:
    """Turn a user parser's `(value, strategy)` into an outcome; the schema, if any, still applies.
    TypeError when the result is not `(value, strategy)` with strategy 1, 2, 3 or None and a JSON value."""
    problem = user_result_problem(result)
    if problem is not None:
        raise TypeError(f"a parser must return (value, strategy) with strategy 1, 2, 3 or None; {problem}")
    value, strategy = result
    if strategy is None:
        return ParseOutcome(strategy=None, error="user parser found nothing")
    schema_ok = None if schema is None or strategy == 3 else _schema_errors(value, schema) is None
    return ParseOutcome(strategy=strategy, value=value, schema_ok=schema_ok)
