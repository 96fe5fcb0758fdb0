"""The one vocabulary of a swap's phases: spans, the dry run, the VRAM sampler, the journal and the reports all
speak it. The values are what swap.json and the journal record (and have since the first version)."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    CHECK = "check"  # Phase 0: contracts, touching nothing
    BASELINE_BENCH = "baseline-bench"  # production measured live, before any stop
    PREPARE = "prepare"  # right before the first stop: the candidates' model files read into the page cache again
    STOP = "stop"
    DRAIN = "drain"  # the stopped services' memory freed
    LAUNCH = "launch"
    READY = "ready"
    SMOKE = "smoke"
    BENCH = "bench"  # the candidate measured
    TEARDOWN = "teardown"
    DRAIN_CANDIDATE = "drain-candidate"  # the candidate's memory freed
    RESTORE = "restore"
    VERIFY = "verify"
    DRIFT_BENCH = "drift-bench"  # the baseline measured again, production up: no downtime
    REPORT = "report"


LOADED = (Phase.SMOKE, Phase.BENCH)  # the candidate's model is in memory and serving
RESTORING = (Phase.TEARDOWN, Phase.DRAIN_CANDIDATE, Phase.RESTORE, Phase.VERIFY)
