"""Plan loading: valid plans load; each broken plan names the file, the key path and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swapbench.errors import PlanError
from swapbench.plan.load import key_path, load_plan, plan_json_schema

GOOD = """
[run]
label = "e4b-vs-e2b"
samples = 20
extended_samples = 100
warmup = 3
time_cap_s = 1500

[image]
path = "car-view.jpg"

[[workloads]]
name = "nav"
kind = "nav"
max_tokens = 20
[workloads.prompt_builder]
callable = "services.panda_nav.server:build_vlm_prompt"
kwargs = { goal = "something interesting" }
python_path = ["repo"]

[[workloads]]
name = "describe"
kind = "describe"

[baseline]
label = "gemma-4-E2B"
url = "http://127.0.0.1:11435"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def test_good_plan_loads_with_defaults_and_hash(tmp_path: Path) -> None:
    loaded = load_plan(write(tmp_path, GOOD))
    plan = loaded.plan
    assert plan.run.samples == 20
    assert [w.name for w in plan.workloads] == ["nav", "describe"]
    assert plan.workloads[0].effective_max_tokens == 20
    assert plan.workloads[1].effective_max_tokens == 128
    assert plan.baseline is not None and plan.baseline.url == "http://127.0.0.1:11435"
    assert loaded.resolve(Path("car-view.jpg")) == tmp_path / "car-view.jpg"
    assert loaded.sha256 is not None and len(loaded.sha256) == 64


def test_plan_is_frozen(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, GOOD)).plan
    with pytest.raises(ValueError, match="frozen"):
        plan.run.samples = 5  # type: ignore[misc]


IMG = "[image]\npath = 'car.jpg'\n"
BAD = [
    ("[run]\nsamples = 0\n", "plan.toml: run.samples: Input should be greater than 0"),
    ("[run]\nsamples = 'many'\n", "plan.toml: run.samples: Input should be a valid integer"),
    ("[run]\nsamplez = 3\n", "plan.toml: run.samplez: unknown key"),
    ("[run]\nwarmup = -1\n", "run.warmup: Input should be greater than or equal to 0"),
    ("[run]\nsamples = 30\nextended_samples = 20\n", "run: extended_samples must be >= samples"),
    ("[run]\nconcurrency = 4\n", "run.concurrency: Input should be 1"),
    ("[run]\ntime_cap_s = 0\n", "run.time_cap_s: Input should be greater than 0"),
    ("colour = 'blue'\n", "plan.toml: colour: unknown key"),
    ("[[workloads]]\nname = 'nav'\n", "workloads[0].kind: Field required"),
    ("[[workloads]]\nkind = 'nav'\nimage = false\n", "workloads[0].name: Field required"),
    (
        "[[workloads]]\nname = 'x'\nkind = 'chat'\nimage = false\n",
        "workloads[0].kind: Input should be 'nav' or 'describe'",
    ),
    (
        "[[workloads]]\nname='a'\nkind='nav'\nimage=false\n[[workloads]]\nname='b'\nkind='nav'\nmax_tokens=0\nimage=false\n",
        "plan.toml: workloads[1].max_tokens: Input should be greater than 0",
    ),
    (
        "[[workloads]]\nname='a'\nkind='nav'\nimage=false\n[[workloads]]\nname='a'\nkind='describe'\nimage=false\n",
        "workload names must be unique; repeated: a",
    ),
    ("[[workloads]]\nname='a b'\nkind='nav'\nimage=false\n", "workloads[0].name: String should match pattern"),
    (
        "[[workloads]]\nname='a'\nkind='nav'\nimage=false\nprompt='x'\nprompt_builder={callable='m:f'}\n",
        "workloads[0]: give either prompt or prompt_builder, not both",
    ),
    (
        "[[workloads]]\nname='a'\nkind='nav'\nimage=false\nprompt_builder={callable='no-colon'}\n",
        "workloads[0].prompt_builder.callable: String should match pattern",
    ),
    (
        "[[workloads]]\nname='a'\nkind='describe'\nimage=false\njson_schema='s.json'\n",
        "workloads[0]: parser and json_schema apply to nav workloads only",
    ),
    (
        "[[workloads]]\nname='a'\nkind='nav'\n",
        "plan.toml: workloads[0] (a) sends the image (image = true) but the plan has no [image]",
    ),
    ("[image]\n", "image.path: Field required"),
    ("[image]\npath='a.jpg'\nsha256='abc'\n", "image.sha256: String should match pattern"),
    ("[baseline]\nurl='http://127.0.0.1:1'\n", "baseline.label: Field required"),
    ("[baseline]\nlabel='b'\nurl='127.0.0.1:11435'\n", "baseline.url: must be an http(s) URL"),
    (
        "[baseline]\nlabel='b'\nurl='http://127.0.0.1:1'\n[[candidates]]\nlabel='b'\nurl='http://127.0.0.1:2'\n",
        "target labels (baseline and candidates) must be unique; repeated: b",
    ),
    ("[[candidates]]\nlabel='c'\nport=11437\n", "candidates[0].port: unknown key"),
    (
        IMG + "[[candidates]]\nlabel='c'\nlaunch={kind='docker'}\n",
        "candidates[0].launch: launching candidates arrives with",
    ),
    (
        IMG + "[[services]]\nname='tts'\nmanager='command'\n",
        "plan.toml: services: stopping and restoring services arrives",
    ),
    ("[[services]]\nname='tts'\nmanager='upstart'\n", "services[0].manager: Input should be"),
    (IMG + "[[checks]]\nkind='port_free'\nport=11437\n", "plan.toml: checks: Phase 0 contracts arrive"),
    (IMG + "[[verify]]\nkind='wav'\n", "plan.toml: verify: post-restore verification arrives"),
    (IMG + "[gates]\ncandidate_vram_gb={healthy=[5.5, 7.5]}\n", "plan.toml: gates: VRAM gates arrive"),
    (
        "[decision]\nmin_schema_adherence=1.5\n",
        "decision.min_schema_adherence: Input should be less than or equal to 1",
    ),
    ("[run\n", "plan.toml: not valid TOML"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_plan_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(PlanError) as info:
        load_plan(write(tmp_path, text))
    assert expected in str(info.value)
    assert info.value.hint
    assert info.value.exit_code == 2


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read plan"):
        load_plan(tmp_path / "nope.toml")


def test_every_error_is_listed_at_once(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as info:
        load_plan(write(tmp_path, "[run]\nsamples = 0\nwarmup = -1\n"))
    assert "run.samples" in str(info.value) and "run.warmup" in str(info.value)


def test_key_path_formatting() -> None:
    assert key_path(("workloads", 1, "max_tokens")) == "workloads[1].max_tokens"
    assert key_path(()) == "(top level)"


def test_schema_is_json_with_every_section() -> None:
    schema = json.loads(plan_json_schema())
    assert set(schema["properties"]) == {
        "run",
        "image",
        "workloads",
        "baseline",
        "candidates",
        "services",
        "checks",
        "verify",
        "gates",
        "decision",
    }


@pytest.mark.parametrize(
    "example", sorted((Path(__file__).parents[2] / "examples").glob("*.toml")), ids=lambda p: p.name
)
def test_examples_stay_valid(example: Path) -> None:
    loaded = load_plan(example)
    assert loaded.plan.workloads
