"""Turn a plan's workload into what the bench loop sends and how it reads the answers."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swapbench.core.bench import BenchWorkload
from swapbench.core.results import ParseOutcome, WorkloadInfo
from swapbench.errors import InputError, WorkloadError
from swapbench.plan.models import CallableRef, Workload
from swapbench.workloads import describe, nav

Parser = Callable[[str | None], ParseOutcome]


def load_callable(ref: CallableRef, where: str, resolve: Callable[[Path], Path]) -> Callable[..., Any]:
    """Import `module:function`, with the ref's python_path entries first on sys.path."""
    for entry in reversed(ref.python_path):
        path = str(resolve(entry))
        if path not in sys.path:
            sys.path.insert(0, path)
    module_name, _, attr = ref.callable.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing user code is the user's to see
        raise WorkloadError(
            f"{where}: cannot import {module_name!r}: {type(exc).__name__}: {exc}",
            hint=f"check the module name and {where.rsplit('.', 1)[0]}.python_path "
            f"(searched first: {', '.join(str(resolve(p)) for p in ref.python_path) or 'nothing extra'})",
        ) from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise WorkloadError(f"{where}: {module_name!r} has no function {attr!r}", hint="check the part after the ':'")
    return func  # type: ignore[no-any-return]


def _prompt(workload: Workload, where: str, resolve: Callable[[Path], Path]) -> str:
    if workload.prompt is not None:
        return workload.prompt
    if workload.prompt_builder is not None:
        builder = load_callable(workload.prompt_builder, f"{where}.prompt_builder.callable", resolve)
        try:
            text = builder(**workload.prompt_builder.kwargs)
        except Exception as exc:
            raise WorkloadError(
                f"{where}.prompt_builder: {workload.prompt_builder.callable} raised {type(exc).__name__}: {exc}",
                hint="check prompt_builder.kwargs against the function's parameters",
            ) from exc
        if not isinstance(text, str) or not text.strip():
            raise WorkloadError(
                f"{where}.prompt_builder: {workload.prompt_builder.callable} returned {type(text).__name__}, "
                "not a non-empty prompt string",
                hint="the builder must return the prompt text",
            )
        return text
    return nav.build_prompt() if workload.kind == "nav" else describe.DEFAULT_PROMPT


def _schema(workload: Workload, where: str, resolve: Callable[[Path], Path]) -> dict[str, Any] | None:
    if workload.json_schema is not None:
        path = resolve(workload.json_schema)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{where}.json_schema: cannot read {path}: {exc}", hint="give a JSON Schema file") from exc
        if not isinstance(schema, dict):
            raise InputError(f"{where}.json_schema: {path} is not a JSON object", hint="give a JSON Schema file")
        return schema
    if workload.kind == "nav" and workload.prompt is None and workload.prompt_builder is None:
        return nav.DEFAULT_SCHEMA  # the built-in prompt asks for exactly this
    return None


def _parser(
    workload: Workload, schema: dict[str, Any] | None, where: str, resolve: Callable[[Path], Path]
) -> Parser | None:
    if workload.kind != "nav":
        return None
    if workload.parser is None:
        return lambda content: nav.parse_nav(content, schema)
    user = load_callable(workload.parser, f"{where}.parser.callable", resolve)

    def parse(content: str | None) -> ParseOutcome:
        try:
            result = user(content or "", **workload.parser.kwargs) if workload.parser else None
        except Exception as exc:  # the model's output broke the user's parser: a parse failure
            return ParseOutcome(strategy=None, error=f"parser raised {type(exc).__name__}: {exc}")
        try:
            return nav.check_user_outcome(result, schema)
        except TypeError as exc:
            raise WorkloadError(f"{where}.parser: {exc}", hint="return (value, strategy)") from exc

    return parse


def request_body(
    workload: Workload, prompt: str, image_url: str | None, seed: int, model: str | None
) -> dict[str, Any]:
    """The chat-completions body: deterministic sampling, thinking off unless asked, extra fields last."""
    content: list[dict[str, Any]] = []
    if workload.image and image_url is not None:
        content.append({"type": "image_url", "image_url": {"url": image_url}})
    content.append({"type": "text", "text": prompt})
    messages: list[dict[str, Any]] = []
    if workload.system:
        messages.append({"role": "system", "content": workload.system})
    messages.append({"role": "user", "content": content})
    body: dict[str, Any] = {
        "messages": messages,
        "max_tokens": workload.effective_max_tokens,
        "temperature": 0,
        "seed": seed,
        "chat_template_kwargs": {"enable_thinking": workload.enable_thinking},
    }
    if model:
        body["model"] = model
    return {**body, **workload.extra_body}


def prepare(
    workload: Workload,
    index: int,
    image_url: str | None,
    seed: int,
    model: str | None,
    resolve: Callable[[Path], Path],
) -> BenchWorkload:
    where = f"workloads[{index}]"
    prompt = _prompt(workload, where, resolve)
    schema = _schema(workload, where, resolve)
    info = WorkloadInfo(
        name=workload.name,
        kind=workload.kind,
        max_tokens=workload.effective_max_tokens,
        prompt=prompt,
        prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
        system=workload.system,
        image=workload.image,
        enable_thinking=workload.enable_thinking,
        json_schema=schema,
    )
    body = request_body(workload, prompt, image_url, seed, model)
    return BenchWorkload(info=info, body=body, parse=_parser(workload, schema, where, resolve))
