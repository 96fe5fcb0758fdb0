"""`swapbench bench` options become a plan before any traffic: a bad option is a PlanError naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from swapbench.app.bench import BenchRequest, bench_server
from swapbench.errors import PlanError


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (BenchRequest(url="http://10.0.0.1:8080"), "command line: --url: 10.0.0.1 is not loopback"),
        (BenchRequest(url="http://[::1"), "command line: --url: 'http://[::1' is not a usable URL"),
        (BenchRequest(url="http://127.0.0.1:1", samples=0), "command line: --samples: Input should be greater"),
        (BenchRequest(url="http://127.0.0.1:1", label="a b"), "command line: --label: String should match"),
        (BenchRequest(url="http://127.0.0.1:1", workloads=("ocr",)), "--workload 'ocr' is not a built-in"),
        (BenchRequest(url="http://127.0.0.1:1", workloads=("chat",)), "--workload chat needs --prompts FILE.jsonl"),
        (BenchRequest(plan=Path("p.toml"), prompts=Path("q.jsonl")), "--prompts goes with --url"),
        (BenchRequest(), "nothing to benchmark"),
        (BenchRequest(url="http://127.0.0.1:1", plan=Path("p.toml")), "give either --plan or --url, not both"),
        (BenchRequest(url="http://127.0.0.1:1", image=Path("a.jpg"), frames=Path("f")), "give either --image or"),
    ],
    ids=[
        "remote",
        "malformed",
        "no samples",
        "label",
        "workload",
        "chat without prompts",
        "prompts with a plan",
        "neither",
        "both",
        "image and frames",
    ],
)
def test_a_bad_option_sends_nothing_and_names_the_option(request_: BenchRequest, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        bench_server(request_)
    assert caught.value.message.startswith(message), caught.value.message
