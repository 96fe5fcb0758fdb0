#!/usr/bin/python
# Copyright: swapbench contributors; MIT license (see the repository's LICENSE)
"""Ansible module: one swapbench window on the managed host, its outcome returned from the supervised run's
JSON."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: window
short_description: Run one swapbench window on this host and return its outcome
version_added: "0.1.0"
description:
  - >-
    Runs the window of a swapbench plan on the managed host, as C(swapbench run --detach --json PLAN) then
    C(swapbench attach --json RUN_DIR), and returns the window's own record: the outcome, the decision, the
    headline figures and the run folder.
  - The window is a job of its own session (and, where a systemd manager takes it, a transient unit), never a
    child of this module. Ansible's C(async) limit, which SIGKILLs the module's whole process group, therefore
    never skips the restore; the window goes on and C(swapbench attach) shows it again.
  - With I(session), a rerun resumes instead of starting another window. The run folder of the window this
    session started is kept in C(~/.swapbench/sessions/SESSION) on the host, written by swapbench before the
    window's job starts (C(run --note-run-dir)); while it exists, the module attaches to that window (still
    running, or ended) and returns its outcome. A window that Phase 0 refused, or whose job never started, leaves
    no marker behind.
  - In check mode the window is not run. The module returns the dry run (every step the window would take) and
    Phase 0's checks, touching nothing, and fails if a check fails.
  - Fails when production was NOT restored (act on the host at once), and when Phase 0 refused the window
    (nothing was touched). A window that stopped early and restored production is not a failure of the module;
    its C(outcome) says C(aborted-restored), for the play's own stop rules.
  - The stop rules in I(stop_on) are judged here, so that a play needs no logic of its own. C(stop) says whether
    a rollout should stop at this host, and C(stop_reasons) why; the module never acts on them itself.
options:
  plan:
    description: The plan file on the managed host.
    type: path
    required: true
  swapbench:
    description: The swapbench command on the managed host. It must be the same version as the controller's.
    type: str
    default: swapbench
  session:
    description:
      - A name for this rollout on this host. A rerun with the same name attaches to the window it started
        instead of starting another. Omit it to start a new window on every run.
      - In check mode, a session whose window exists is not checked again (its window holds the host's lock);
        the module returns C(outcome=resuming).
    type: str
  stop_on:
    description:
      - What makes C(stop) true. C(not-restored) production was not restored or not verified (the module then
        fails too); C(verify-failed) a verify check failed after the restore; C(aborted) the window stopped early
        and restored production; C(reject), C(inconclusive) and C(pending) the plan's decision on this host.
      - A window that could not be run or read always stops.
    type: list
    elements: str
    choices: [not-restored, verify-failed, aborted, reject, inconclusive, pending]
    default: [not-restored, verify-failed, aborted, reject, inconclusive]
attributes:
  check_mode:
    support: full
    description: The dry run and Phase 0 only.
author:
  - swapbench contributors
"""

EXAMPLES = r"""
- name: Phase 0 on every box, touching nothing
  swapbench.fleet.window:
    plan: ~/plans/gemma4-e4b.toml
  check_mode: true

- name: The window on this box, resumable
  swapbench.fleet.window:
    plan: ~/plans/gemma4-e4b.toml
    session: e4b-rollout-1
  register: window
"""

RETURN = r"""
outcome:
  description: complete, aborted-restored (stopped early, production restored and verified), not-restored
    (production NOT verified), refused (Phase 0 said no; nothing was touched), checked (check mode), or resuming
    (check mode, where this session's window already exists).
  returned: always
  type: str
decision:
  description: The plan's decision on this host's figures (adopt, reject, pending or inconclusive), if any.
  returned: when the window ran
  type: str
headline:
  description: Per judged workload, the baseline's and the candidate's p50 and p95 with their verdicts.
  returned: when the window ran
  type: list
  elements: dict
run_dir:
  description: The window's run folder on the host.
  returned: when the window ran
  type: str
files:
  description: Every file of the run folder, relative to it (for C(ansible.builtin.fetch)).
  returned: when the window ran
  type: list
  elements: str
resumed:
  description: True when the module attached to the window this session had started.
  returned: always
  type: bool
host:
  description: The managed host's own name (its hostname), as the messages name it.
  returned: always
  type: str
stop:
  description: Whether a rollout should stop at this host, by I(stop_on).
  returned: always
  type: bool
stop_reasons:
  description: Each rule of I(stop_on) this host met, in words.
  returned: always
  type: list
  elements: str
record:
  description: The window's whole record, as C(swapbench attach --json) prints it.
  returned: when the window ran
  type: dict
checks:
  description: Phase 0's checks in check mode, as C(swapbench check --json) prints them.
  returned: in check mode
  type: list
  elements: dict
steps:
  description: The dry run's steps in check mode.
  returned: in check mode
  type: list
  elements: dict
"""

import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

SESSIONS = "~/.swapbench/sessions"
HOST = platform.node()
STOP_RULES = ["not-restored", "verify-failed", "aborted", "reject", "inconclusive", "pending"]
DEFAULT_STOP_ON = ["not-restored", "verify-failed", "aborted", "reject", "inconclusive"]


def _fail(module, msg, **result):
    """A failure of the module: the rollout stops here (whatever stop_on says), with the host named."""
    result.setdefault("resumed", False)
    result.setdefault("changed", False)
    result.setdefault("outcome", "refused")
    module.fail_json(msg=f"{HOST}: {msg}", host=HOST, stop=True, stop_reasons=[msg], **result)


def stop_reasons(record, stop_on):
    """The rules of stop_on this window's record meets, each in words."""
    found = []
    outcome, decision = record.get("outcome"), record.get("decision")
    verify = record.get("verify_failed") or []
    if outcome == "not-restored" and "not-restored" in stop_on:
        found.append(f"production was NOT restored on {HOST}: {record.get('message')}")
    if verify and "verify-failed" in stop_on:
        found.append(f"verify failed on {HOST}: " + "; ".join(verify))
    if outcome == "aborted-restored" and "aborted" in stop_on:
        found.append(f"the window on {HOST} stopped early (production restored): {record.get('message')}")
    if decision in stop_on:
        said = [r for r in record.get("decision_reasons", []) if not r.startswith(("met:", "not applicable:"))]
        said.sort(key=lambda r: r.startswith("open:"))  # what was NOT met (or could not be judged) first
        found.append(f"the decision on {HOST} is {str(decision).upper()}: " + "; ".join(said))
    return found


def _json(module, argv):
    """Run swapbench with --json; its exit code and parsed stdout (None when it printed no JSON)."""
    code, out, err = module.run_command(
        argv, check_rc=False, environ_update={"COLUMNS": "200"}, expand_user_and_vars=False
    )  # every word as given: no ~ or $ expanded
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, None, err


def _json_or_fail(module, argv):
    """The JSON a check command printed; a module failure (nothing was touched) when it printed none."""
    code, found, err = _json(module, argv)
    if found is None:
        _fail(module, f"`{' '.join(argv[1:3])}` failed (exit {code}): {err.strip()[-1500:]}")
    return found


def _check(module, plan, swapbench, marker):
    if marker and os.path.exists(marker):
        run_dir = _session_run_dir(module, marker)
        module.exit_json(changed=False, outcome="resuming", resumed=True, run_dir=run_dir, host=HOST, stop=False,
                         stop_reasons=[], checks=[], steps=[])  # fmt: skip
    dry = _json_or_fail(module, [swapbench, "check", "--dry-run", "--json", plan])
    found = _json_or_fail(module, [swapbench, "check", "--json", plan])
    checks = found.get("checks", [])
    failed = [c for c in checks if c.get("status") == "fail"]
    result = dict(outcome="checked", checks=checks, steps=dry.get("steps", []))
    if failed:
        named = "; ".join(f"{c.get('name')}: {c.get('detail')}" for c in failed)
        _fail(module, f"Phase 0 failed, nothing was touched: {named}", **result)
    module.exit_json(changed=False, resumed=False, host=HOST, stop=False, stop_reasons=[], **result)


def _forget_unstarted(marker):
    """The marker of a window whose job never wrote its first event (so never touched anything): removed."""
    if not marker or not os.path.exists(marker):
        return
    with open(marker, encoding="utf-8") as file:
        events = os.path.join(file.read().strip(), "events.jsonl")
    if not os.path.exists(events) or os.path.getsize(events) == 0:
        os.unlink(marker)


def _session_run_dir(module, marker):
    with open(marker, encoding="utf-8") as file:
        run_dir = file.read().strip()
    if not os.path.isdir(run_dir):
        _fail(module, f"this session's window ran in {run_dir}, which is gone; remove {marker} to start a new "
                      "window, or use another session name")  # fmt: skip
    return run_dir


def _files(run_dir):
    found = []
    for folder, _, names in os.walk(run_dir):
        for name in names:
            found.append(os.path.relpath(os.path.join(folder, name), run_dir))
    return sorted(found)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            plan=dict(type="path", required=True),
            swapbench=dict(type="str", default="swapbench"),
            session=dict(type="str"),
            stop_on=dict(type="list", elements="str", choices=STOP_RULES, default=DEFAULT_STOP_ON),
        ),
        supports_check_mode=True,
    )
    plan, swapbench, session = module.params["plan"], module.params["swapbench"], module.params["session"]
    marker = None
    if session:
        if "/" in session or session.startswith("."):
            _fail(module, f"session {session!r}: use a plain name (no '/', not starting with '.')")
        marker = os.path.join(os.path.expanduser(SESSIONS), session)
    if module.check_mode:
        _check(module, plan, swapbench, marker)
    resumed = bool(marker and os.path.exists(marker))
    if resumed:
        run_dir = _session_run_dir(module, marker)
    else:
        noted = []
        if marker:  # swapbench writes the run folder there before the window's job exists: no moment is unmarked
            os.makedirs(os.path.dirname(marker), mode=0o700, exist_ok=True)
            noted = ["--note-run-dir", marker]
        code, started, err = _json(module, [swapbench, "run", "--detach", "--json", *noted, plan])
        if started is None or started.get("outcome") != "detached":
            record = started or {}
            _forget_unstarted(marker)
            _fail(module, f"the window was not started (exit {code}): {record.get('message') or err.strip()[-1500:]}",
                  outcome=record.get("outcome", "refused"), record=record,
                  changed=bool(record.get("changed")))  # fmt: skip
        run_dir = started["run_dir"]
    code, record, err = _json(module, [swapbench, "attach", "--json", run_dir])
    if record is None:
        _fail(module, f"swapbench attach {run_dir} printed no record (exit {code}): {err.strip()[-1500:]}; "
                      "the window may still run there: `swapbench attach` it on the host",
              outcome="unknown", run_dir=run_dir, resumed=resumed, changed=True)  # fmt: skip
    result = dict(
        changed=bool(record.get("changed")),
        outcome=record.get("outcome"),
        decision=record.get("decision"),
        headline=record.get("headline", []),
        run_dir=record.get("run_dir", run_dir),
        files=_files(record.get("run_dir", run_dir)),
        resumed=resumed,
        record=record,
        host=HOST,
    )
    reasons = stop_reasons(record, module.params["stop_on"])
    if record.get("outcome") == "not-restored":
        module.fail_json(
            msg=f"production was NOT restored on {HOST}: {record.get('message')} "
            f"Act now: {record.get('hint') or 'swapbench rollback ' + plan}",
            stop=bool(reasons), stop_reasons=reasons, **result,
        )  # fmt: skip
    if record.get("outcome") == "refused":
        if marker and os.path.exists(marker):
            os.unlink(marker)  # nothing was touched: a rerun checks again instead of resuming a refusal
        _fail(module, f"Phase 0 refused the window, nothing was touched: {record.get('message')}", **result)
    module.exit_json(stop=bool(reasons), stop_reasons=reasons, **result)


if __name__ == "__main__":
    main()
