"""`swapbench status PLAN`: what is live now (the window's owner, an unfinished journal, each service probed now)
and the last finished run with when it ended. Reads only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from swapbench.app.swap import journal_path, output_dir
from swapbench.core.command_json import DamagedRecord, HostStatus, LastRun
from swapbench.core.steps import Outcome, Status, SwapReport
from swapbench.errors import InputError, JournalError
from swapbench.host.services import ServiceOps
from swapbench.host.window.journal import read_journal
from swapbench.host.window.lock import live_owner
from swapbench.plan.load import LoadedPlan, load_plan
from swapbench.plan.models import Service
from swapbench.report.records import read_model


def status_of(path: Path) -> HostStatus:
    """`swapbench status PLAN`."""
    return status(load_plan(path))


def status(loaded: LoadedPlan) -> HostStatus:
    """What is live now (an owner, an unfinished journal, each service probed now), then the last run that
    finished, with when it ended. Reads only."""
    path = journal_path(loaded)
    live = live_owner(output_dir(loaded))
    now = datetime.now(UTC)
    checked_at, owner = now.isoformat(timespec="seconds"), live.describe() if live is not None else None
    services = [_service_now(svc, loaded) for svc in loaded.plan.services]  # what is live matters most after a crash
    last, damaged = _last_run(output_dir(loaded), now)
    found = HostStatus(checked_at=checked_at, plan=str(loaded.path), journal=str(path), owner=owner,
                       services_now=services, last_run=last, damaged_records=damaged)  # fmt: skip
    try:
        state = read_journal(path)
    except JournalError as exc:
        return found.model_copy(update={"journal_damaged": exc.message})
    if not state.records or state.closed:
        return found
    return found.model_copy(update={"unfinished_run": state.run_id or "?", "journal_lines": state.summary()})


def _service_now(svc: Service, loaded: LoadedPlan) -> Outcome:
    state = ServiceOps(svc, loaded.resolve).state()
    return Outcome(name=f"service {svc.name}", status=Status.PASS if state.ok else Status.FAIL, detail=state.detail)


def _last_run(folder: Path, now: datetime) -> tuple[LastRun | None, list[DamagedRecord]]:
    """The newest readable swap.json or rollback.json (a window the watchdog or a person rolled back ends with
    the latter); damaged ones are named and skipped."""
    damaged: list[DamagedRecord] = []
    found = [p for name in ("swap.json", "rollback.json") for p in folder.glob(f"*/{name}") if p.is_file()]
    for path in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            report = read_model(path, SwapReport, "swap report", "")
        except InputError as exc:
            damaged.append(DamagedRecord(path=str(path), why=type(exc.__cause__ or exc).__name__))
            continue
        ended = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        kind: Literal["run", "rollback"] = "rollback" if path.name == "rollback.json" else "run"
        return LastRun(run_id=report.run_id, status=report.status, kind=kind, ended_by=report.ended_by,
                       error=report.error, folder=str(path.parent), ended_at=ended.isoformat(timespec="seconds"),
                       ended_s_ago=(now - ended).total_seconds(), verify=report.verify), damaged  # fmt: skip
    return None, damaged
