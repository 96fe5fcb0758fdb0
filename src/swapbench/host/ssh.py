"""The operator's own OpenSSH, driven as argv: `ssh` and `scp` from PATH, so ~/.ssh/config, keys, the agent,
ProxyJump and ControlMaster all apply. Nothing here weakens host-key checking, puts a secret in an argv or
asks for a password (BatchMode): a key or an agent logs in, or ssh's own words say why not. Every word of a
remote command is quoted for the remote shell.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swapbench.errors import RemoteFailed
from swapbench.host.processes.proc import CommandResult, run_argv

SSH_FAILED = 255  # ssh's own exit code for its own failures (a remote command's code is passed through)
# Defaults: give up on a box that does not answer, and notice a dead link within ~15 s rather than at TCP's own
# timeout (minutes); a dropped link only detaches the laptop, the window goes on. ssh keeps the first value it is
# given and reads its command line before ~/.ssh/config: the operator's own `-o` for a key replaces its default
# here, while a value for these three keys in ~/.ssh/config does not (pass it with `-o`).
DEFAULTS = {"ConnectTimeout": "15", "ServerAliveInterval": "5", "ServerAliveCountMax": "3"}


@dataclass(frozen=True)
class Box:
    """A GPU box reached over SSH: `host` as ~/.ssh/config knows it; `options`: more `-o KEY=VALUE` for ssh
    and scp (a port, an identity file, a known_hosts file)."""

    host: str
    options: tuple[str, ...] = ()
    live_to_stderr: bool = False  # stream() writes the box's output to this stderr instead of stdout

    def _common(self) -> list[str]:
        """BatchMode first (never a password prompt, whatever is configured), then the operator's options, then
        the defaults they did not set."""
        found = ["-o", "BatchMode=yes"]
        for option in self.options:
            found += ["-o", option]
        given = {option.split("=", 1)[0].strip().lower() for option in self.options}
        for key, value in DEFAULTS.items():
            if key.lower() not in given:
                found += ["-o", f"{key}={value}"]
        return found

    def ssh_argv(self, words: Sequence[str], tty: bool = False) -> list[str]:
        """ssh running `words` on the box; `tty`: a terminal there (the live status line), else none."""
        return ["ssh", "-t" if tty else "-T", *self._common(), "--", self.host, shlex.join(words)]

    def run(self, words: Sequence[str], timeout_s: float = 60.0) -> CommandResult:
        """Run on the box and capture; ssh's own failure (exit 255) is a RemoteFailed in ssh's words."""
        result = run_argv(self.ssh_argv(words), timeout_s)
        if result.returncode == SSH_FAILED or result.timed_out:
            raise RemoteFailed(f"ssh {self.host} failed: {_words(result)}", hint=_hint(result))
        return result

    def stream(self, words: Sequence[str], tty: bool) -> int:
        """Run on the box with this terminal's output (the live status arrives as it is drawn); its exit code."""
        try:
            output = sys.stderr if self.live_to_stderr else None
            return subprocess.run(self.ssh_argv(words, tty), stdout=output, check=False).returncode
        except OSError as exc:
            raise RemoteFailed(f"cannot run ssh: {exc.strerror or exc}", hint="install OpenSSH's client") from exc

    def copy_to(self, local: Path, remote: str, timeout_s: float = 120.0) -> None:
        self._scp([str(local), f"{self.host}:{remote}"], timeout_s)

    def copy_from(self, remote: str, local: Path, timeout_s: float = 600.0) -> None:
        """A folder of the box, copied whole into the folder `local` (as local/NAME)."""
        self._scp([f"{self.host}:{remote}", str(local)], timeout_s, recursive=True)

    def _scp(self, args: list[str], timeout_s: float, recursive: bool = False) -> None:
        flags = ["-q", "-p", *(["-r"] if recursive else []), *self._common()]
        result = run_argv(["scp", *flags, "--", *args], timeout_s)
        if not result.ok:
            raise RemoteFailed(f"scp {' '.join(args)} failed: {_words(result)}", hint=_hint(result))


def _words(result: CommandResult) -> str:
    """What ssh or scp said, as it said it (its last lines)."""
    text = " / ".join(line.strip() for line in result.stderr.strip().splitlines()[-3:] if line.strip())
    if result.timed_out:
        return f"no answer within {result.duration_s:.0f} s" + (f" ({text})" if text else "")
    return text or f"exit {result.returncode}"


def _hint(result: CommandResult) -> str:
    said = result.stderr
    if "Host key verification failed" in said or "REMOTE HOST IDENTIFICATION HAS CHANGED" in said:
        return ("check the box's host key and add it to known_hosts yourself (`ssh HOST` once, comparing the "
                "fingerprint); swapbench never turns host-key checking off")  # fmt: skip
    if "Permission denied" in said:
        return "log in with a key or an agent (BatchMode: no password is ever asked); check the user and the key"
    return "check that `ssh HOST true` works from this terminal"
