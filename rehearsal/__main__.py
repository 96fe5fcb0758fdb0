"""`python -m rehearsal up|down|shell|status|run -- CMD`: the rehearsal host from a terminal (scripts/rehearsal.sh)."""

from __future__ import annotations

import argparse
import os
import sys

from rehearsal.host import OPERATOR, RehearsalError, RehearsalHost, cgroups


def act(action: str, argv: list[str], host: RehearsalHost) -> int:
    if action == "up":
        built = host.build()
        booted = host.up()
        image = f"built in {built:.0f} s" if built else "cached"
        print(f"rehearsal host up: image {image}, booted and healthy in {booted:.1f} s")
        print(f"  the twin's plan:   {host.plan}")
        print("  as the operator:   scripts/rehearsal.sh run -- swapbench check --dry-run panda-twin.toml")
        print("  a shell:           scripts/rehearsal.sh shell        remove it all: scripts/rehearsal.sh down")
    elif action == "down":
        host.down()
        print("rehearsal host removed")
    elif action == "status":
        bad = host.unhealthy()
        print("twin healthy" if not bad else f"not healthy: {', '.join(bad)}")
        return 1 if bad else 0
    elif action == "shell":
        flags = ["--user", OPERATOR, "--workdir", str(host.home), "-e", f"HOME={host.home}"]
        os.execvpe("podman", ["podman", "exec", "-it", *flags, host.container, "bash", "-l"], host.env)
    else:  # the operator's command on this terminal, as long as it takes
        command = host.exec_argv(argv)
        os.execvpe(command[0], command, host.env)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/rehearsal.sh", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "shell", "status", "run"])
    parser.add_argument("argv", nargs="*", help="for run: the command to run as the operator, after --")
    args = parser.parse_args()
    before = cgroups()
    try:
        code = act(args.action, args.argv, RehearsalHost())
    except RehearsalError as exc:
        print(f"rehearsal: {exc}", file=sys.stderr)
        code = 1
    if cgroups() != before:
        print("rehearsal: HAZARD: the cgroup of PID 1 or of this process changed; see shared/notes/real-managers.md",
              file=sys.stderr)  # fmt: skip
        return 3
    return code


if __name__ == "__main__":
    sys.exit(main())
