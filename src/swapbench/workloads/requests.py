"""Turn a plan's workload into what the bench loop sends and how it reads the answers.

Everything user-supplied is tried here, before any traffic: a prompt builder runs once, isolated (the text
it returned is what the bench sends), a parser is tried isolated on sample answers, a schema file is read
and checked. The results are kept per process, so Phase 0 and the window's later calls agree without
running user code twice.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema

from swapbench.adapters.image import LoadedFrames, load_frames, read_regular_file
from swapbench.core.bench import BenchWorkload
from swapbench.core.kinds import Prompts, kind_of, max_tokens
from swapbench.core.kinds.base import MAX_PROMPT_BYTES
from swapbench.core.results import ParseOutcome, WorkloadInfo
from swapbench.errors import InputError, PlanError, WorkloadError
from swapbench.plan.load import LoadedPlan
from swapbench.plan.models import CallableRef, NavWorkload, OnePromptWorkload, Target, Workload
from swapbench.workloads import nav
from swapbench.workloads.deadline import Overrun, call_with_deadline
from swapbench.workloads.isolated import CALL_TIMEOUT_S, Ending, IsolatedCall, Raised, Returned, call_isolated

Parser = Callable[[str | None], ParseOutcome]
Resolve = Callable[[Path], Path]

MAX_SCHEMA_BYTES = 2**20
MAX_PROMPTS_FILE_BYTES = 16 * 2**20
# Answers a nav parser must survive: strict JSON, fenced JSON, prose, nothing at all.
PARSER_SAMPLES = ('{"action": "forward"}', '```json\n{"action": "left"}\n```', "I'd go left", "")
SCHEMA_SAMPLES: tuple[Any, ...] = ({"action": "forward"}, {"action": "left", "reason": "x"}, {}, [], "left", None, 0)
DATA_KEYWORDS = {"const", "enum", "default", "examples"}  # their values are instances, not schemas

_prompts: dict[tuple[str, str, tuple[str, ...]], str] = {}  # per process: Phase 0 and the window agree
_parsers_tried: set[tuple[str, str, tuple[str, ...]]] = set()


def load_callable(ref: CallableRef, where: str, resolve: Resolve) -> Callable[..., Any]:
    """Import `module:function` in this process, with the ref's python_path entries first on sys.path."""
    for entry in reversed(ref.python_path):
        path = str(resolve(entry))
        if path not in sys.path:
            sys.path.insert(0, path)
    module_name, _, attr = ref.callable.partition(":")
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # any error (even SystemExit) while importing user code is the user's to see
        raise WorkloadError(
            f"{where} ({ref.callable}): cannot import {module_name!r}: {type(exc).__name__}: {exc}",
            hint=_path_hint(ref, where, resolve),
        ) from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise WorkloadError(
            f"{where} ({ref.callable}): {module_name!r} has no function {attr!r}", hint="check the part after the ':'"
        )
    return func  # type: ignore[no-any-return]


def _path_hint(ref: CallableRef, where: str, resolve: Resolve) -> str:
    searched = ", ".join(str(resolve(p)) for p in ref.python_path) or "nothing extra"
    return f"check the module name and {where}.python_path (searched first: {searched})"


def _cache_key(ref: CallableRef, resolve: Resolve) -> tuple[str, str, tuple[str, ...]]:
    kwargs = json.dumps(ref.kwargs, sort_keys=True, default=repr)
    return ref.callable, kwargs, tuple(str(resolve(p)) for p in ref.python_path)


def _call(ref: CallableRef, where: str, resolve: Resolve, calls: list[list[Any]], timeout_s: float) -> IsolatedCall:
    """Run the user function isolated; refuse what stops it from being called at all."""
    call = call_isolated(ref.callable, ref.kwargs, calls, [resolve(p) for p in ref.python_path], timeout_s)
    module_name, _, attr = ref.callable.partition(":")
    label, note = f"{where} ({ref.callable})", call.output_note()
    if call.ending is Ending.IMPORT_FAILED:
        raise WorkloadError(
            f"{label}: cannot import {module_name!r}: {call.detail}{note}", hint=_path_hint(ref, where, resolve)
        )
    if call.ending is Ending.NO_FUNCTION:
        raise WorkloadError(f"{label}: {module_name!r} has no function {attr!r}", hint="check the part after the ':'")
    if call.ending is Ending.GARBLED:
        raise WorkloadError(
            f"{label}: could not be tried: {call.detail}{note}",
            hint="a prompt builder or parser must not write to file descriptors it did not open",
        )
    if call.ending is Ending.NOT_STARTED:
        raise WorkloadError(f"{label}: could not be tried: {call.detail}", hint="free memory or processes, retry")
    return call


def _no_answer(call: IsolatedCall, label: str, timeout_s: float, during: str) -> WorkloadError:
    """The call in progress neither returned nor raised: it exited, or it hung and was killed."""
    note = call.output_note()
    if call.ending is Ending.TIMED_OUT:
        return WorkloadError(
            f"{label}: did not return within {timeout_s:g} s{during}; its process group was killed{note}",
            hint="it must return promptly: it may not wait for input, a device or the network",
        )
    stage = "while being imported" if not call.imported else f"without returning{during}"
    return WorkloadError(
        f"{label}: exited ({call.detail}) {stage}{note}",
        hint="it must return its result: remove the sys.exit()/os._exit() from its path",
    )


def _raised(outcome: Raised) -> str:
    return f"raised {outcome.error}" + (f" (at {outcome.where})" if outcome.where else "")


def built_prompt(ref: CallableRef, where: str, resolve: Resolve, timeout_s: float = CALL_TIMEOUT_S) -> str:
    """The prompt text from a builder run once, isolated; cached for the rest of the process."""
    key = _cache_key(ref, resolve)
    if key in _prompts:
        return _prompts[key]
    call = _call(ref, where, resolve, [[]], timeout_s)
    label = f"{where} ({ref.callable})"
    if not call.outcomes:
        raise _no_answer(call, label, timeout_s, "")
    outcome = call.outcomes[0]
    if isinstance(outcome, Raised):
        raise WorkloadError(
            f"{label}: {_raised(outcome)}{call.output_note()}",
            hint=f"check {where}.kwargs against the function's parameters",
        )
    problem = _prompt_problem(outcome)
    if problem is not None:
        raise WorkloadError(f"{label}: {problem}", hint="the builder must return the prompt text")
    _prompts[key] = outcome.value
    return str(outcome.value)


def _prompt_problem(outcome: Returned) -> str | None:
    if outcome.kind != "str":
        return f"returned {outcome.type_name}, not a non-empty prompt string"
    text = outcome.value
    if not outcome.json_ok or not isinstance(text, str):
        return f"returned a prompt of {outcome.json_chars} characters as JSON, over the {MAX_PROMPT_BYTES} byte limit"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "returned a string that is not valid Unicode text (a lone surrogate)"
    if size > MAX_PROMPT_BYTES:
        return f"returned a prompt of {size} bytes, over the {MAX_PROMPT_BYTES} byte limit"
    if not text.strip():
        return f"returned {outcome.type_name} {outcome.shown}, not a non-empty prompt string"
    return None


def try_parser(ref: CallableRef, where: str, resolve: Resolve, timeout_s: float = CALL_TIMEOUT_S) -> None:
    """Call a user parser isolated on PARSER_SAMPLES: it must return `(value, strategy)` or raise on each,
    never hang or exit, and must not raise on all of them. Once per process."""
    key = _cache_key(ref, resolve)
    if key in _parsers_tried:
        return
    call = _call(ref, where, resolve, [[s] for s in PARSER_SAMPLES], timeout_s)
    label = f"{where} ({ref.callable})"
    for sample, outcome in zip(PARSER_SAMPLES, call.outcomes, strict=False):
        problem = _parser_problem(outcome) if isinstance(outcome, Returned) else None
        if problem is not None:
            raise WorkloadError(
                f"{label}: on the sample answer {sample!r} it {problem}",
                hint="a parser returns (value, strategy): a JSON value, and 1, 2, 3 or None",
            )
    if len(call.outcomes) < len(PARSER_SAMPLES):
        raise _no_answer(call, label, timeout_s, f" on the sample answer {PARSER_SAMPLES[len(call.outcomes)]!r}")
    if all(isinstance(o, Raised) for o in call.outcomes):
        first = call.outcomes[0]
        assert isinstance(first, Raised)
        raise WorkloadError(
            f"{label}: raised on every sample answer, e.g. on {PARSER_SAMPLES[0]!r}: {_raised(first)}",
            hint="return (None, None) when an answer holds nothing usable; raise only on the unexpected",
        )
    _parsers_tried.add(key)


def _parser_problem(outcome: Returned) -> str | None:
    if not outcome.json_ok:
        return f"returned {outcome.type_name} {outcome.shown}, which is not JSON-serialisable"
    return nav.user_result_problem(outcome.value)


def _prompt(workload: Workload, where: str, resolve: Resolve, timeout_s: float) -> str:
    if isinstance(workload, OnePromptWorkload) and workload.prompt is not None:
        return workload.prompt
    if isinstance(workload, OnePromptWorkload) and workload.prompt_builder is not None:
        return built_prompt(workload.prompt_builder, f"{where}.prompt_builder", resolve, timeout_s)
    default = kind_of(workload.kind).default_prompt()
    assert default is not None, f"{workload.kind} has neither a default prompt nor prompts of its own"
    return default


def read_schema(path: Path, key: str) -> dict[str, Any]:
    """A JSON Schema file: a regular file under the cap, a UTF-8 JSON object, a valid draft 2020-12 schema
    whose every $ref is local and resolves."""
    raw = read_regular_file(path, MAX_SCHEMA_BYTES, what="JSON schema", key=key)
    try:
        schema = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{key}: {path} is not UTF-8 JSON: {exc}", hint="give a JSON Schema file") from exc
    if not isinstance(schema, dict):
        raise InputError(f"{key}: {path} is not a JSON object", hint="give a JSON Schema file")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except RecursionError as exc:
        raise InputError(f"{key}: {path} is nested too deeply to be checked", hint="flatten the schema") from exc
    except jsonschema.exceptions.SchemaError as exc:
        at = "/".join(str(p) for p in exc.path) or "the top level"
        raise InputError(
            f"{key}: {path} is not a valid JSON Schema: at {at}: {exc.message}",
            hint="fix the schema; swapbench checks it as JSON Schema draft 2020-12",
        ) from exc
    _check_refs(schema, path, key)
    _try_schema(schema, path, key)
    return schema


def _refs(schema: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    """Every $ref / $dynamicRef string, and whether it sits inside a subschema with its own $id."""
    stack: list[tuple[Any, bool]] = [(schema, False)]
    while stack:
        node, nested = stack.pop()
        if isinstance(node, list):
            stack.extend((item, nested) for item in node)
        elif isinstance(node, dict):
            nested = nested or (node is not schema and "$id" in node)
            for name, value in node.items():
                if name in ("$ref", "$dynamicRef") and isinstance(value, str):
                    yield value, nested
                elif name not in DATA_KEYWORDS:
                    stack.append((value, nested))


def _check_refs(schema: dict[str, Any], path: Path, key: str) -> None:
    """Nothing is fetched: refuse a remote or file $ref before it can fail mid-window; local ones must resolve."""
    resolver = referencing.Registry().resolver_with_root(referencing.jsonschema.DRAFT202012.create_resource(schema))
    for ref, nested in _refs(schema):
        if not ref.startswith("#"):
            raise InputError(
                f"{key}: {path} has a remote or file $ref {ref!r}, which swapbench does not fetch",
                hint="inline the definition under $defs and refer to it as '#/$defs/NAME'",
            )
        if nested:  # inside a subschema with its own $id a ref is relative to it: the trial below covers it
            continue
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable as exc:
            raise InputError(
                f"{key}: {path}: $ref {ref!r} points to nothing in the file ({exc})",
                hint="define what it points to in the same file, e.g. under $defs",
            ) from exc


def _try_schema(schema: dict[str, Any], path: Path, key: str) -> None:
    """Apply the schema to a few values, as the bench will to every answer."""
    try:
        validator = jsonschema.Draft202012Validator(schema)
        for sample in SCHEMA_SAMPLES:
            list(validator.iter_errors(sample))
    except Exception as exc:  # an unresolvable ref deep inside, a pattern Python cannot compile...
        raise InputError(
            f"{key}: {path} cannot be applied to an answer: {type(exc).__name__}: {exc}",
            hint="fix the schema; try it with python -m jsonschema or check-jsonschema",
        ) from exc


def _schema(workload: Workload, where: str, resolve: Resolve) -> dict[str, Any] | None:
    if isinstance(workload, NavWorkload) and workload.json_schema is not None:
        return read_schema(resolve(workload.json_schema), f"{where}.json_schema")
    return kind_of(workload.kind).default_schema(workload)


def _parser(
    workload: Workload,
    schema: dict[str, Any] | None,
    where: str,
    resolve: Resolve,
    timeout_s: float,
    parse_timeout_s: float,
) -> Parser | None:
    if not isinstance(workload, NavWorkload):  # the one kind with a parse contract (and user parsers)
        return None
    ref = workload.parser
    if ref is None:
        return lambda content: nav.parse_nav(content, schema)
    try_parser(ref, f"{where}.parser", resolve, timeout_s)
    user = load_callable(ref, f"{where}.parser", resolve)

    def parse(content: str | None) -> ParseOutcome:
        """In process, for speed, within `parse_timeout_s`; whatever the user code does with one answer (raise,
        exit, loop) fails that answer only."""
        try:
            result = call_with_deadline(lambda: user(content or "", **ref.kwargs), parse_timeout_s)
        except KeyboardInterrupt:
            raise
        except Overrun:
            return ParseOutcome(strategy=None, error=f"parser did not return within {parse_timeout_s:g} s "
                                "([run].parse_timeout_s); stopped")  # fmt: skip
        except BaseException as exc:  # SystemExit included: a parser must never end the run
            return ParseOutcome(strategy=None, error=f"parser raised {type(exc).__name__}: {_text(exc)}")
        problem = nav.user_result_problem(result)
        if problem is not None:
            return ParseOutcome(strategy=None, error=f"parser {problem}")
        return nav.check_user_outcome(result, schema)

    return parse


def request_body(
    workload: Workload, prompt: str, image_url: str | None, seed: int, model: str | None, system: str | None = None
) -> dict[str, Any]:
    """The chat-completions body: deterministic sampling, thinking off unless asked, extra fields last; `system`
    (a prompt's own) before the workload's."""
    content: list[dict[str, Any]] = []
    if workload.image and image_url is not None:
        content.append({"type": "image_url", "image_url": {"url": image_url}})
    content.append({"type": "text", "text": prompt})
    messages: list[dict[str, Any]] = []
    if system or workload.system:
        messages.append({"role": "system", "content": system or workload.system})
    messages.append({"role": "user", "content": content})
    body: dict[str, Any] = {
        "messages": messages,
        "max_tokens": max_tokens(workload),
        "temperature": 0,
        "seed": seed,
        "chat_template_kwargs": {"enable_thinking": workload.enable_thinking},
    }
    if not workload.cache_prompt:
        body["cache_prompt"] = False  # llama-server: evaluate the whole prompt, image included, every time
    if model:
        body["model"] = model
    return {**body, **workload.extra_body}


def prepare(
    workload: Workload,
    index: int,
    image_urls: Sequence[str],
    seed: int,
    model: str | None,
    resolve: Resolve,
    *,
    call_timeout_s: float = CALL_TIMEOUT_S,
    parse_timeout_s: float = 2.0,
) -> BenchWorkload:
    """Check and assemble one workload; user code runs isolated, within `call_timeout_s` per function."""
    where = f"workloads[{index}]"
    kind = kind_of(workload.kind)
    schema = _schema(workload, where, resolve)
    many = kind.prompts(workload, where, _reader(resolve))
    prompt = _prompt(workload, where, resolve, call_timeout_s) if many is None else many.text
    info = WorkloadInfo(
        name=workload.name,
        kind=workload.kind,
        max_tokens=max_tokens(workload),
        prompt=prompt,
        prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest() if many is None else many.sha256,
        system=workload.system,
        image=workload.image,
        enable_thinking=workload.enable_thinking,
        json_schema=schema,
        cache_prompt=workload.cache_prompt,
        scores=list(kind.scores),
    )
    parse = _parser(workload, schema, where, resolve, call_timeout_s, parse_timeout_s)
    if many is not None:
        return BenchWorkload(info=info, bodies=_bodies(workload, many, seed, model), parse=parse, score=many.score,
                             itemised=True)  # fmt: skip
    framed = workload.image and bool(image_urls)
    urls: Sequence[str | None] = image_urls if framed else [None]
    bodies = tuple(request_body(workload, prompt, url, seed, model) for url in urls)
    return BenchWorkload(info=info, bodies=bodies, parse=parse, framed=framed)


def _bodies(workload: Workload, many: Prompts, seed: int, model: str | None) -> tuple[dict[str, Any], ...]:
    systems = many.systems or (None,) * len(many.texts)
    pairs = zip(many.texts, systems, strict=True)
    return tuple(request_body(workload, text, None, seed, model, system) for text, system in pairs)


def _reader(resolve: Resolve) -> Callable[[Path, str], bytes]:
    """How a kind reads the files its plan model names: resolved against the plan, regular files under a cap."""
    return lambda path, key: read_regular_file(resolve(path), MAX_PROMPTS_FILE_BYTES, what="prompts file", key=key)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a user __str__ that fails must not turn one parse failure into a crash
        return "<unprintable>"


def prepare_workloads(
    loaded: LoadedPlan, target: Target, only: Sequence[str] = ()
) -> tuple[LoadedFrames | None, list[BenchWorkload]]:
    """Check every input before any traffic: the image, prompt builders, parsers, schemas."""
    plan = loaded.plan
    chosen = [(i, w) for i, w in enumerate(plan.workloads) if not only or w.name in only]
    missing = sorted(set(only) - {w.name for w in plan.workloads})
    if missing:
        raise PlanError(
            f"the plan has no workload {missing[0]!r}",
            hint=f"use one of: {', '.join(w.name for w in plan.workloads)}",
        )
    frames = None
    if plan.image is not None and any(w.image for _, w in chosen):
        frames = load_frames(plan.image.path, plan.image.frames, plan.image.sha256, loaded.resolve)
    urls = [f.data_url for f in frames.frames] if frames else []
    return frames, [
        prepare(w, i, urls, plan.run.seed, target.model, loaded.resolve, parse_timeout_s=plan.run.parse_timeout_s)
        for i, w in chosen
    ]
