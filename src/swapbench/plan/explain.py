"""Turn pydantic's validation errors into plan-file messages: the TOML key path, TOML's words, a did-you-mean."""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Iterable, Sequence
from typing import Any

Schema = dict[str, Any]
Loc = Sequence[int | str]

# What a type error expected, in TOML's words (the plan is TOML: a port is an integer, never a string).
EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "path_type": "a string (a path)",
    "list_type": "an array", "tuple_type": "an array",
    "dict_type": "a table", "model_type": "a table", "model_attributes_type": "a table",
}  # fmt: skip
CHOICE_ERRORS = {"literal_error", "enum", "union_tag_invalid", "union_tag_not_found"}


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """` (did you mean 'stop_order'?)` for a near miss of one of `choices`, else ''."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def key_path(loc: Loc) -> str:
    """('workloads', 1, 'max_tokens') -> 'workloads[1].max_tokens'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def explain(errors: Sequence[Any], schema: Schema) -> list[str]:
    """One `key.path: what is wrong` line per problem. A value that fails every branch of a plain union (a
    path or a list of paths) is one line naming every type it could have been."""
    lines: list[str] = []
    wrong_type: dict[str, tuple[int, list[str], str]] = {}  # key -> (its line, the types expected, what it holds)
    for error in errors:
        loc = error["loc"]
        if error["type"] == "extra_forbidden":  # the last part is the user's key, whatever it looks like
            path, parent = _walk(loc[:-1], schema)
            lines.append(f"{key_path([*path, loc[-1]])}: unknown key{_unknown_key(loc[-1], parent, path, schema)}")
            continue
        path, node = _walk(loc, schema)
        if error["type"].startswith("union_tag"):  # the tag's own key (kind, manager) is what to fix
            path.append(str(error["ctx"]["discriminator"]).strip("'"))
        key = key_path(path) if path else ""
        if error["type"] not in EXPECTED:
            lines.append(_prefixed(key, _message(error, node, schema)))
        elif key in wrong_type:
            wrong_type[key][1].append(EXPECTED[error["type"]])
        else:
            wrong_type[key] = (len(lines), [EXPECTED[error["type"]]], _found(error["input"], path))
            lines.append("")  # written below, once every branch of a union has been seen
    for key, (at, expected, found) in wrong_type.items():
        lines[at] = _prefixed(key, f"must be {' or '.join(dict.fromkeys(expected))}, not {found}")
    return lines


def _prefixed(key: str, message: str) -> str:
    return f"{key}: {message}" if key else message


def _message(error: Any, node: Schema | None, schema: Schema) -> str:
    if error["type"] in CHOICE_ERRORS:
        return _choice(error, node, schema)
    return str(error["msg"]).removeprefix("Value error, ")


def _choice(error: Any, node: Schema | None, schema: Schema) -> str:
    """A kind, manager or other closed set: every allowed value, and the nearest to what was written."""
    choices = _choices(node, schema)
    if not choices:
        return str(error["msg"])
    allowed = f"must be {choices[0]}" if len(choices) == 1 else f"must be one of: {', '.join(choices)}"
    if error["type"] == "union_tag_not_found":
        return f"Field required; {allowed}"
    written = error["input"]
    if error["type"] == "union_tag_invalid":  # the ctx holds the tag as text: `kind = 5` is the integer 5
        written = error["input"].get(str(error["ctx"]["discriminator"]).strip("'"), error["ctx"]["tag"])
    return f"{allowed}; got {_literal(written)}{did_you_mean(written, choices)}"


def _choices(node: Schema | None, schema: Schema) -> list[str]:
    if node is None:
        return []
    if "enum" in node:
        return [str(v) for v in node["enum"]]
    if "const" in node:
        return [str(node["const"])]
    for alt in _alternatives(node, schema):
        if "discriminator" in alt:
            tag = alt["discriminator"]["propertyName"]
            return [str(_deref(ref, schema)["properties"][tag]["const"]) for ref in alt["oneOf"]]
    return []


def _keys(node: Schema, schema: Schema) -> list[str]:
    return [k for alt in _branches(node, schema) for k in alt.get("properties", {})]


def _branches(node: Schema, schema: Schema) -> list[Schema]:
    """Every table shape a value at `node` may take, a tagged union's branches included."""
    found = []
    for alt in _alternatives(node, schema):
        found += [_deref(ref, schema) for ref in alt["oneOf"]] if "discriminator" in alt else [alt]
    return found


def _unknown_key(key: int | str, parent: Schema | None, path: list[int | str], schema: Schema) -> str:
    """The near miss among the keys beside it, or the table one level down that has this key."""
    if parent is None:
        return ""
    if near := did_you_mean(key, _keys(parent, schema)):
        return near
    for alt in _branches(parent, schema):
        for name, child in alt.get("properties", {}).items():
            if key in _keys(child, schema):
                return f"; {key} belongs in {key_path([*path, name])}"
    return "; `swapbench plan-schema` lists every key"


def _found(value: object, path: list[int | str]) -> str:
    """What the plan holds instead, with the way out when only the quotes are wrong (`port = "8081"`)."""
    name = _toml_type(value)
    if isinstance(value, str):
        unquoted = _unquoted(value)
        where = f"write {path[-1]} = {unquoted}" if path and isinstance(path[-1], str) else f"write {unquoted}"
        fix = f": {where}, without quotes" if unquoted is not None else ""
        return f"{name} ({_literal(value)}){fix}"
    return f"{name} ({_literal(value)})" if isinstance(value, int | float) else name


def _unquoted(text: str) -> str | None:
    """The TOML value a quoted string would be without its quotes: a number or a boolean, else None."""
    if text.strip() in ("true", "false"):
        return text.strip()
    try:
        float(text)
    except ValueError:
        return None
    return text.strip()


def _toml_type(value: object) -> str:
    match value:
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a float"
        case str():
            return "a string"
        case list() | tuple():
            return "an array"
        case dict():
            return "a table"
        case datetime.date() | datetime.time():
            return "a date or time"
    return type(value).__name__


def _literal(value: object) -> str:
    """A value as the plan file spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:56]}...{text[-1]}"


def _deref(node: Schema, schema: Schema) -> Schema:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _alternatives(node: Schema, schema: Schema) -> list[Schema]:
    """The shapes a value at `node` may take: a tagged union stays whole (its tag picks the branch)."""
    node = _deref(node, schema)
    if "discriminator" in node or "anyOf" not in node:
        return [node]
    return [alt for option in node["anyOf"] for alt in _alternatives(option, schema)]


def _step(node: Schema, part: int | str, schema: Schema) -> tuple[Schema | None, bool]:
    """The schema under `part`, and whether `part` was a tagged union's tag (a branch, not a TOML key)."""
    for alt in _alternatives(node, schema):
        mapping = alt.get("discriminator", {}).get("mapping", {})
        if isinstance(part, str) and part in mapping:
            return _deref({"$ref": mapping[part]}, schema), True
        if isinstance(part, int):
            items = alt.get("prefixItems") or []
            if part < len(items):
                return items[part], False
            if "items" in alt:
                return alt["items"], False
        elif part in alt.get("properties", {}):
            return alt["properties"][part], False
    return None, False


def _walk(loc: Loc, schema: Schema) -> tuple[list[int | str], Schema | None]:
    """pydantic's error location -> the TOML key path (no union tags, no validator names) and its schema."""
    path: list[int | str] = []
    node: Schema | None = schema
    for part in loc:
        child, is_tag = _step(node, part, schema) if node is not None else (None, False)
        if child is None and isinstance(part, str) and ("[" in part or part.startswith("function")):
            continue  # pydantic's own name for a union's branch or a validator: the plan file has no such key
        node = child
        if not is_tag:
            path.append(part)
    return path, None if node is None else _deref(node, schema)
