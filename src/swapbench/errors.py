"""The one exception tree of swapbench: every error says what happened, what to do, and its exit code.

    SwapbenchError                  exit 1   anything swapbench itself refuses or cannot do
    ├── PlanError                   exit 2   the plan file (or CLI options) is invalid; names the key
    ├── ComparisonRefused           exit 2   two results were not measured alike: comparing them would mislead
    ├── InputError                  exit 3   a file the run needs is missing or unusable (image, ...)
    ├── WorkloadError               exit 4   a workload's prompt builder or parser cannot be used
    ├── Interrupted                 exit 130 Ctrl-C / SIGINT / SIGTERM: stopped on request, gathered data kept
    ├── PreflightFailed             exit 6   a Phase 0 contract failed: nothing was touched
    ├── SwapFailed                  exit 7   a step of the swap failed; production was restored and verified
    │   ├── SmokeFailed                      the candidate's first answers broke the contract (the smoke test)
    │   ├── TimeCapReached                   the session's time cap ran out
    │   └── GateAborted                      a VRAM reading crossed a gate's abort line
    ├── RestoreFailed               exit 8   production could NOT be fully restored or verified: act now
    ├── JournalError                exit 9   the window is not free: an unfinished or unreadable journal
    │   └── WindowBusy                       another swapbench (named) owns the window now
    ├── StepFailed                  exit 10  one host operation failed (stop, start, launch...); wrapped above
    ├── RemoteFailed                exit 11  the box could not be reached or driven over SSH (ssh's own words)
    └── EndpointError               exit 5   the server under test cannot be benchmarked
        ├── EndpointUnreachable              nothing listens at the URL
        ├── EndpointLoading                  /health answers 503 "Loading model"
        └── EndpointRequestFailed            a request got an HTTP error or a malformed answer

A decision is not an error: `swapbench decide` exits with the decision's own code (DecisionExit):
ADOPT 0, REJECT 20, PENDING 21, INCONCLUSIVE 22. Any other exception is a bug: one line, exit 1, and the
traceback saved to a file (cli.reported).

Third-party exceptions never cross a package's border: the host, the adapters and every reader of a file
raise these, chained with `from exc`.
"""

from __future__ import annotations

from enum import IntEnum


class DecisionExit(IntEnum):
    """The exit code of each decision (core.decision.Status has the same names)."""

    ADOPT = 0
    REJECT = 20
    PENDING = 21
    INCONCLUSIVE = 22


class SwapbenchError(Exception):
    """Base class. `hint` tells the user what to do next."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class PlanError(SwapbenchError):
    """The plan file or the command line is invalid."""

    exit_code = 2


class ComparisonRefused(SwapbenchError):
    """The two runs are not alike (frames, prompts, settings); comparing them would mislead."""

    exit_code = 2


class InputError(SwapbenchError):
    """A file the run needs (image, schema, ...) is missing or unusable."""

    exit_code = 3


class WorkloadError(SwapbenchError):
    """A workload's prompt builder or parser cannot be imported or fails."""

    exit_code = 4


class Interrupted(SwapbenchError):
    """The user interrupted the run (Ctrl-C)."""

    exit_code = 130


class PreflightFailed(SwapbenchError):
    """A Phase 0 contract failed; nothing on the host was touched."""

    exit_code = 6


class SwapFailed(SwapbenchError):
    """A step of the swap failed; production was restored and verified."""

    exit_code = 7


class SmokeFailed(SwapFailed):
    """The candidate's smoke request broke the nav contract or leaked thinking."""


class TimeCapReached(SwapFailed):
    """The session's time cap ran out."""


class GateAborted(SwapFailed):
    """A VRAM reading crossed the abort line of a gate."""


class RestoreFailed(SwapbenchError):
    """Production could not be fully restored or verified: a person must act."""

    exit_code = 8


class JournalError(SwapbenchError):
    """An unfinished or unreadable journal blocks the run."""

    exit_code = 9


class WindowBusy(JournalError):
    """Another swapbench process (run, rollback or watchdog) holds the window's lock."""


class StepFailed(SwapbenchError):
    """One operation on the host failed (stop, start, launch, teardown, drain)."""

    exit_code = 10


class RemoteFailed(SwapbenchError):
    """`swapbench remote`: ssh or scp failed (host key, login, the link), or the box runs another swapbench."""

    exit_code = 11


class EndpointError(SwapbenchError):
    """The OpenAI-compatible server under test cannot be benchmarked."""

    exit_code = 5


class EndpointUnreachable(EndpointError):
    """Nothing answers at the URL (connection refused, timeout, DNS)."""


class EndpointLoading(EndpointError):
    """The server answers 503 while it is still loading its model."""


class EndpointRequestFailed(EndpointError):
    """A request got an HTTP error status or an answer that is not a chat completion."""

    def __init__(self, message: str, *, hint: str = "", status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def error_for(exit_code: int) -> type[SwapbenchError]:
    """The class whose exit code this is (a window's outcome told by its job, raised again where it is shown)."""
    found: list[type[SwapbenchError]] = [SwapbenchError]
    while found:
        cls = found.pop(0)  # the broadest class first: SwapFailed, not one of its kinds
        if cls.exit_code == exit_code:
            return cls
        found += cls.__subclasses__()
    return SwapbenchError
