"""Plan loading: valid plans load; each broken plan names the file, the key path and what to do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from swapbench.core.kinds import max_tokens
from swapbench.errors import PlanError
from swapbench.plan.explain import key_path
from swapbench.plan.load import load_plan, plan_json_schema

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
    assert max_tokens(plan.workloads[0]) == 20
    assert max_tokens(plan.workloads[1]) == 128
    assert plan.baseline is not None and plan.baseline.url == "http://127.0.0.1:11435"
    assert loaded.resolve(Path("car-view.jpg")) == tmp_path / "car-view.jpg"
    assert loaded.sha256 is not None and len(loaded.sha256) == 64


def test_plan_is_frozen(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, GOOD)).plan
    with pytest.raises(ValueError, match="frozen"):
        plan.run.samples = 5  # type: ignore[misc]


IMG = "[image]\npath = 'car.jpg'\n"
TTS_HEALTH = 'health = { url = "http://127.0.0.1:8772/health", json_field = "model_loaded", json_equals = true }\n'
SVC = (
    '[[services]]\nname = "llama"\nmanager = "systemd"\nunit = "panda-llamacpp"\n'
    'health = { url = "http://127.0.0.1:11435/health" }\n'
    '[[services]]\nname = "tts"\nmanager = "command"\nstart = ["./start.sh"]\nstop = ["./stop.sh"]\n'
    + TTS_HEALTH
    + '[[services]]\nname = "phone"\nmanager = "process"\npattern = "phone_call.py auto"\n'
)
NATIVE = "[candidates.launch]\nkind='native'\nbinary='/usr/bin/llama-server'\nmodel='m.gguf'\nport=11437\n"
DOCKER = (
    "[candidates.launch]\nkind='docker'\nname='e4b'\nimage='llama:cuda'\nmodels_dir='/m'\n"
    "model='/m/a.gguf'\nport=11437\n"
)
CAND = IMG + "[[candidates]]\nlabel='c'\n"
BAD = [
    ("[run]\nsamples = 0\n", "plan.toml: run.samples: Input should be greater than 0"),
    ("[run]\nsamples = 'many'\n", "plan.toml: run.samples: must be an integer, not a string ('many')"),
    ("[run]\nsamplez = 3\n", "plan.toml: run.samplez: unknown key"),
    ("[run]\nwarmup = -1\n", "run.warmup: Input should be greater than or equal to 0"),
    ("[run]\nsamples = 30\nextended_samples = 20\n", "run: extended_samples must be >= samples"),
    ("[run]\nconcurrency = 4\n", "run.concurrency: must be 1; got 4"),
    ("[run]\ntime_cap_s = 0\n", "run.time_cap_s: Input should be greater than 0"),
    ("colour = 'blue'\n", "plan.toml: colour: unknown key"),
    ("[[workloads]]\nname = 'nav'\n", "workloads[0].kind: Field required"),
    ("[[workloads]]\nkind = 'nav'\nimage = false\n", "workloads[0].name: Field required"),
    (
        "[[workloads]]\nname = 'x'\nkind = 'ocr'\nimage = false\n",
        "workloads[0].kind: must be one of: nav, describe, chat; got 'ocr'",
    ),
    (
        "[[workloads]]\nname='a'\nkind='nav'\nimage=false\n[[workloads]]\nname='b'\nkind='nav'\nmax_tokens=0\nimage=false\n",
        "plan.toml: workloads[1].max_tokens: Input should be greater than 0",
    ),
    (
        "[[workloads]]\nname='a'\nkind='nav'\nimage=false\n[[workloads]]\nname='a'\nkind='describe'\nimage=false\n",
        "plan.toml: workloads: names must be unique; repeated: a",
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
        "workloads[0]: json_schema applies to nav workloads only",
    ),
    (
        "[[workloads]]\nname='a'\nkind='nav'\n",
        "plan.toml: workloads[0] (a) sends the image (image = true) but the plan has no [image]",
    ),
    ("[image]\n", 'image: give either path = "image.jpg" or frames = "folder/"'),
    ("[image]\npath='a.jpg'\nframes='f/'\n", 'image: give either path = "image.jpg" or frames = "folder/"'),
    ("[image]\nframes=[]\n", "image: frames: give 1 to 1000 files; got 0"),
    ("[run]\np50_precision=0\n", "run.p50_precision: Input should be greater than 0"),
    ("[decision]\ntolerance=1.5\n", "decision.tolerance: Input should be less than 1"),
    ("[decision]\nmax_degenerate_share=-0.1\n", "decision.max_degenerate_share: Input should be greater than or equal"),
    ("[image]\npath='a.jpg'\nsha256='abc'\n", "image.sha256: String should match pattern"),
    ("[baseline]\nurl='http://127.0.0.1:1'\n", "baseline.label: Field required"),
    ("[baseline]\nlabel='b'\nurl='127.0.0.1:11435'\n", "baseline.url: must be an http(s) URL"),
    ("[baseline]\nlabel='b'\nurl='http://10.0.0.1:8080'\n", "baseline.url: 10.0.0.1 is not loopback"),
    ("[baseline]\nlabel='b'\nurl='http://127.evil.example:80'\n", "baseline.url: 127.evil.example is not loopback"),
    ("[baseline]\nlabel='b'\nurl='http://[::1'\n", "baseline.url: 'http://[::1' is not a usable URL (Invalid IPv6"),
    ("[baseline]\nlabel='b'\nurl='http://127.0.0.1:99999'\n", "is not a usable URL (Port out of range"),
    ("[baseline]\nlabel='b'\nurl='http://127.0.0.1:0'\n", "must be an http(s) URL such as"),
    (
        "[baseline]\nlabel='b'\nurl='http://127.0.0.1:1'\n[[candidates]]\nlabel='b'\nurl='http://127.0.0.1:2'\n",
        "plan.toml: baseline, candidates: labels must be unique; repeated: b",
    ),
    # --- the safe swap: services, orders, candidates, checks, verify ---
    (
        SVC.replace('manager = "process"', 'manager = "upstart"'),
        "services[2].manager: must be one of: systemd, docker, command, process, supervisord; got 'upstart'",
    ),
    (SVC.replace('unit = "panda-llamacpp"\n', ""), "plan.toml: services[0].unit: Field required"),
    (SVC.replace('start = ["./start.sh"]\n', ""), "plan.toml: services[1].start: Field required"),
    (SVC.replace('start = ["./start.sh"]', "start = []"), "services[1].start: List should have at least 1 item"),
    (
        SVC.replace('start = ["./start.sh"]', 'start = "./start.sh"'),
        "services[1].start: must be an array, not a string ('./start.sh')",
    ),
    (SVC.replace('pattern = "phone_call.py auto"\n', ""), "plan.toml: services[2].pattern: Field required"),
    (SVC.replace(TTS_HEALTH, ""), "services[1]: a command service needs health or pattern"),
    (
        SVC.replace('url = "http://127.0.0.1:11435/health"', 'url = "localhost:11435"'),
        "services[0].health.url: must be",
    ),
    (SVC.replace('name = "tts"', 'name = "llama"'), "plan.toml: services: names must be unique; repeated: llama"),
    (
        IMG + SVC + "[run]\nstop_order = ['tts', 'nav']\n",
        "run.stop_order names 'nav', which is not a [[services]] name",
    ),
    (
        IMG + SVC + "[run]\nstop_order = ['tts']\nrestore_order = ['chatterbox']\n",
        "run.restore_order names 'chatterbox', which is not a [[services]] name",
    ),
    (
        IMG + SVC + "[run]\nstop_order = ['tts', 'llama']\nrestore_order = ['llama']\n",
        "run.restore_order must name exactly the services in run.stop_order (stopped but never restored: tts)",
    ),
    (IMG + SVC + "[run]\nstop_order = ['phone']\n", "run.stop_order names 'phone', a process service"),
    (IMG + SVC + "[run]\nstop_order = ['tts', 'tts']\n", "run.stop_order must be unique; repeated: tts"),
    ("[[candidates]]\nlabel='c'\nport=11437\n", "candidates[0].port: unknown key"),
    (
        IMG + "[[candidates]]\nlabel='c'\nurl='http://127.0.0.1:1'\n" + NATIVE,
        "candidates[0]: give url (a running server) or launch (swapbench starts it), not both",
    ),
    (
        CAND + NATIVE.replace("binary='/usr/bin/llama-server'\n", ""),
        "candidates[0].launch.binary: Field required",
    ),
    (
        CAND + NATIVE.replace("kind='native'", "kind='podman'"),
        "candidates[0].launch.kind: must be one of: native, docker; got 'podman'",
    ),
    (CAND + NATIVE.replace("port=11437", "port=0"), "candidates[0].launch.port: Input should be greater than or equal"),
    (CAND + NATIVE.replace("model='m.gguf'\n", ""), "candidates[0].launch.model: Field required"),
    (CAND + NATIVE + "host='0.0.0.0'\n", "host = '0.0.0.0' is not loopback"),
    (CAND + NATIVE + "host='::'\n", "host = '::' is not loopback"),
    (CAND + NATIVE + "host=''\n", "host = '' is not loopback"),
    (CAND + NATIVE + "host='192.168.1.20'\n", "host = '192.168.1.20' is not loopback"),
    (CAND + DOCKER + "publish='11437:8080'\n", "publish = '11437:8080' exposes the port"),
    (CAND + DOCKER + "publish='0.0.0.0:11437:8080'\n", "publish = '0.0.0.0:11437:8080' exposes the port"),
    (CAND + DOCKER.replace("image='llama:cuda'\n", ""), "candidates[0].launch.image: Field required"),
    (CAND + DOCKER.replace("models_dir='/m'\n", ""), "candidates[0].launch.models_dir: Field required"),
    (CAND + NATIVE + "jinja=false\n", "jinja = false would ignore chat_template_kwargs"),
    (CAND + NATIVE + "flags=['--no-jinja']\n", "flags contain --no-jinja"),
    (CAND + NATIVE + "flags=['--api-key', 'sk-123']\n", "flags contain --api-key: use --api-key-file PATH"),
    (CAND + NATIVE + "flags=['--host', '0.0.0.0']\n", "set host, port and publish with their own keys"),
    (
        CAND + NATIVE + "[[candidates]]\nlabel='d'\n" + NATIVE,
        "plan.toml: candidates: launch ports must be unique; repeated: 11437",
    ),
    (
        IMG + SVC.replace("8772", "11437") + "[[candidates]]\nlabel='c'\n" + NATIVE,
        "plan.toml: candidates[0] (c).launch.port 11437 is already used by services[1] (tts).health.url",
    ),
    (
        IMG + "[baseline]\nlabel='b'\nurl='http://127.0.0.1:11437'\n[[candidates]]\nlabel='c'\n" + NATIVE,
        "plan.toml: candidates[0] (c).launch.port 11437 is already used by baseline.url; pick a port nothing in "
        "production uses",
    ),
    (IMG + "[baseline]\nlabel='b'\n" + NATIVE.replace("candidates", "baseline"), "the baseline is production"),
    (CAND + NATIVE + "results='old.json'\n", "unknown key"),
    (IMG + "[[candidates]]\nlabel='c'\nresults='old.json'\n", "only the baseline may come from an earlier results"),
    ("[[checks]]\nkind='port_free'\n", "plan.toml: checks[0].port: Field required"),
    ("[[checks]]\nkind='port_free'\nport='x'\n", "checks[0].port: must be an integer, not a string ('x')"),
    (
        "[[checks]]\nkind='telepathy'\n",
        "checks[0].kind: must be one of: sudo, port_free, port_owner, file_pattern, file, disk_free, gpu, vram; got ",
    ),
    ("[[checks]]\nkind='file_pattern'\npath='a.py'\n", "checks[0].pattern: Field required"),
    ("[[checks]]\nkind='port_owner'\nport=11436\n", "checks[0].process: Field required"),
    ("[[checks]]\nkind='disk_free'\npath='/'\nmin_gb=0\n", "checks[0].min_gb: Input should be greater than 0"),
    ("[[verify]]\nkind='wav'\nurl='http://127.0.0.1:8772/synthesize'\n", "plan.toml: verify[0].json: Field required"),
    ("[[verify]]\nkind='pgrep'\n", "verify[0].pattern: Field required"),
    ("[[verify]]\nkind='port_refused'\nport=70000\n", "verify[0].port: Input should be less than or equal to 65535"),
    ("[[verify]]\nkind='vram'\nmin_gb=13.0\n", "verify[0].max_gb: Field required"),
    (
        "[[verify]]\nkind='http'\nurl='http://127.0.0.1:1/'\nstatus='ok'\n",
        "verify[0].status: must be an integer, not a string ('ok')",
    ),
    (IMG + "[gates]\ncandidate_vram_gb={healthy=[5.5]}\n", "gates.candidate_vram_gb.healthy[1]: Field required"),
    (IMG + "[gates]\nvram={healthy=[5.5, 7.5]}\n", "plan.toml: gates.vram: unknown key"),
    (
        "[decision]\nmin_schema_adherence=1.5\n",
        "decision.min_schema_adherence: Input should be less than or equal to 1",
    ),
    ("[run\n", "plan.toml: not valid TOML"),
    ("[run]\nsamples = 3\nsamples = 4\n", "(at line 3, column 12): the key samples is given twice in its table"),
    # --- numbers must be finite and sane, names safe, patterns valid: refused before anything is touched ---
    ("[run]\ntime_cap_s = inf\n", "run.time_cap_s: Input should be a finite number"),
    ("[run]\nrequest_timeout_s = nan\n", "run.request_timeout_s: Input should be a finite number"),
    ("[run]\ntime_cap_s = 1e12\n", "run.time_cap_s: Input should be less than or equal to 86400"),
    ("[run]\ntime_cap_s = 100\nrestore_reserve_s = 100\n", "run: restore_reserve_s (100) must be less than"),
    ("[run]\nlabel = '/../../x'\n", "run.label: String should match pattern"),
    ("[run]\nlabel = '..'\n", "run.label: String should match pattern"),
    ('[run]\nlabel = "a\\u0000b"\n', "run.label: String should match pattern"),
    ("[run]\nlabel = '" + "x" * 300 + "'\n", "run.label: String should have at most 64 characters"),
    ('[image]\npath = "a\\u0000.jpg"\n', "image.path: contains a NUL character"),
    (SVC.replace('pattern = "phone_call.py auto"', 'pattern = "[p"'), "services[2].pattern: not a valid regular"),
    (
        SVC.replace(TTS_HEALTH, 'pattern = "(unclosed"\n'),
        "services[1].pattern: not a valid regular expression",
    ),
    ("[[verify]]\nkind='pgrep'\npattern='[/x'\n", "verify[0].pattern: not a valid regular expression"),
    ("[[checks]]\nkind='file_pattern'\npath='a'\npattern='*x'\n", "checks[0].pattern: not a valid regular"),
    (
        "[[checks]]\nkind='file_pattern'\npath='a'\npattern='x'\nlines=[161, 159]\n",
        "checks[0].lines: must be [first, last] with 1 <= first <= last",
    ),
    (SVC.replace('name = "tts"', 'name = "tts"\nsettle_s = 1e9'), "services[1].settle_s: Input should be less"),
    (
        SVC.replace('name = "tts"', 'name = "tts"\nsettle_s = 200\nready_timeout_s = 100'),
        "services[1]: settle_s (200) must be shorter than ready_timeout_s (100)",
    ),
    (CAND + NATIVE + "settle_s = 400\n", "candidates[0].launch: settle_s (400) must be shorter than ready_timeout_s"),
    (CAND + NATIVE + "ready_timeout_s = inf\n", "candidates[0].launch.ready_timeout_s: Input should be a finite"),
    ("[[verify]]\nkind='vram'\nmin_gb=14\nmax_gb=13\n", "verify[0]: min_gb, max_gb: the lower bound (14)"),
    (
        IMG + "[gates]\ncandidate_vram_gb={healthy=[7.5, 5.5]}\n",
        "gates.candidate_vram_gb.healthy: the lower bound (7.5) is above the upper bound (5.5); write [low, high]: "
        "[5.5, 7.5]",
    ),
    (
        IMG + "[gates]\ncandidate_vram_gb={healthy=[5.5, 7.5], warn=[7.5, 8.0], abort_above=6}\n",
        "gates.candidate_vram_gb: abort_above (6) must not be below the healthy or warn band (8)",
    ),
    (
        IMG + "[gates]\ncandidate_vram_gb={healthy=[5.5, 7.5], warn=[7.0, 8.0]}\n",
        "gates.candidate_vram_gb: warn = [7, 8] starts below the top of healthy = [5.5, 7.5]: the warn band lies above "
        "the healthy one (e.g. warn = [7.5, 8])",
    ),
    (IMG + "[gates]\ncandidate_vram_gb={healthy=[-1, 7.5]}\n", "candidate_vram_gb.healthy: [-1, 7.5]: GB cannot be"),
    # --- TOML's own types are meant: a quoted number or boolean is a mistake, not converted ---
    (
        "[[checks]]\nkind='port_free'\nport='8081'\n",
        "checks[0].port: must be an integer, not a string ('8081'): write port = 8081, without quotes",
    ),
    ("[run]\nstream = 'false'\n", "run.stream: must be true or false, not a string ('false'): write stream = false"),
    ("[run]\nsamples = 20.0\n", "run.samples: must be an integer, not a float (20.0)"),
    ("[run]\ntime_cap_s = true\n", "run.time_cap_s: must be a number, not a boolean"),
    ("[run]\nlabel = 5\n", "run.label: must be a string, not an integer (5)"),
    ("[image]\nframes = 5\n", "image.frames: must be a string (a path) or an array, not an integer (5)"),
    (
        "[gates]\ncandidate_vram_gb={healthy=[5.5, '7.5']}\n",
        "candidate_vram_gb.healthy[1]: must be a number, not a string ('7.5'): write 7.5, without quotes",
    ),
    ("run = 3\n", "plan.toml: run: must be a table, not an integer (3)"),
    ("[[checks]]\nkind='file_pattern'\npath='a'\npattern='x'\nlines=5\n", "checks[0].lines: must be an array"),
    # --- a closed set: every allowed value, and the nearest to what was written ---
    ("[[checks]]\nport=1\n", "checks[0].kind: Field required; must be one of: sudo, port_free, port_owner, "),
    ("[[checks]]\nkind='port_fre'\nport=1\n", "got 'port_fre' (did you mean 'port_free'?)"),
    ("[[checks]]\nkind=5\n", "checks[0].kind: must be one of: sudo, port_free"),
    (
        "[[services]]\nname='x'\n",
        "services[0].manager: Field required; must be one of: systemd, docker, command, process, supervisord",
    ),
    (
        CAND + "[candidates.launch]\nport=1\n",
        "candidates[0].launch.kind: Field required; must be one of: native, docker",
    ),
    (
        "[[workloads]]\nname='a'\nkind='describ'\nimage=false\n",
        "workloads[0].kind: must be one of: nav, describe, chat; got 'describ' (did you mean 'describe'?)",
    ),
    (
        "[[verify]]\nkind='htp'\n",
        "verify[0].kind: must be one of: http, port_refused, wav, pgrep, vram; got 'htp' (did you mean 'http'?)",
    ),
    # --- a near miss of a key or a name is named ---
    ("[run]\nstop_ordr = []\n", "run.stop_ordr: unknown key (did you mean 'stop_order'?)"),
    ("[gate]\n", "plan.toml: gate: unknown key (did you mean 'gates'?)"),
    ("[[checks]]\nkind='port_free'\nprot=1\n", "checks[0].prot: unknown key (did you mean 'port'?)"),
    (
        "[[verify]]\nkind='wav'\nurl='http://127.0.0.1:1/'\njsn={}\n",
        "verify[0].jsn: unknown key (did you mean 'json'?)",
    ),
    ("[run]\nxyzzy = 1\n", "run.xyzzy: unknown key; `swapbench plan-schema` lists every key"),
    (
        IMG + SVC + "[run]\nstop_order = ['tts', 'lama']\n",
        "run.stop_order names 'lama', which is not a [[services]] name (did you mean 'llama'?); the services are: "
        "llama, tts, phone",
    ),
    (CAND + DOCKER.replace("name='e4b'", "name='" + "e" * 65 + "'"), "launch.name: String should have at most 64"),
    (
        "[[services]]\nname='llm'\nmanager='docker'\ncontainer='e4b'\n" + CAND + DOCKER,
        "candidates[0].launch.name 'e4b' is a production container ([[services]])",
    ),
    (  # without gpus the container gets no GPU: a plan that checks for one means one (gpus used to default "all")
        "[[checks]]\nkind='gpu'\n" + CAND + DOCKER,
        "candidates[0].launch.gpus is not set, so the container would get no GPU, but the plan checks for one",
    ),
    (CAND + DOCKER + "gpus='all; rm -rf /'\n", "candidates[0].launch.gpus: String should match pattern"),
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
        "notify",
        "workloads",
        "baseline",
        "candidates",
        "services",
        "checks",
        "verify",
        "gates",
        "decision",
        "report",
    }


@pytest.mark.parametrize(
    "example", sorted((Path(__file__).parents[2] / "examples").glob("*.toml")), ids=lambda p: p.name
)
def test_examples_stay_valid(example: Path) -> None:
    loaded = load_plan(example)
    assert loaded.plan.workloads


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "plan.toml: nested too deeply to be a plan"),
        ("# " + "x" * 2**20 + "\n", "is larger than 1024 KiB: not a plan"),
    ],
    ids=["nested 5000 deep", "a megabyte"],
)
def test_a_plan_that_is_not_one_is_a_plan_error(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(PlanError, match=expected):
        load_plan(write(tmp_path, text))


def test_the_schema_speaks_of_rules_not_of_design_notes() -> None:
    """`plan-schema` is read by users and their editors: a key says what it does, never 'decision 2'."""
    text = plan_json_schema()
    assert re.findall(r"(?i)user plan|decision \d", text) == []
