"""`python -m rehearsal up|down|shell|status|run -- CMD`: the rehearsal host from a terminal (scripts/rehearsal.sh)."""

from __future__ import annotations

import argparse
import os
import sys

from rehearsal.host import CONTAINER, OPERATOR, RehearsalError, RehearsalHost, cgroups


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/rehearsal.sh", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "shell", "status", "run"])
    parser.add_argument("argv", nargs="*", help="for run: the command to run as the operator, after --")
    args = parser.parse_args()
    host = RehearsalHost()
    before = cgroups()
    try:
        if args.action == "up":
            built = host.build()
            booted = host.up()
            image = f"built in {built:.0f} s" if built else "cached"
            print(f"rehearsal host up: image {image}, "
                  f"booted and healthy in {booted:.1f} s")  # fmt: skip
            print(f"  the twin's plan:   {host.plan}")
            print("  as the operator:   scripts/rehearsal.sh run -- swapbench check --dry-run panda-twin.toml")
            print("  a shell:           scripts/rehearsal.sh shell        remove it all: scripts/rehearsal.sh down")
        elif args.action == "down":
            host.down()
            print("rehearsal host removed")
        elif args.action == "status":
            bad = host.unhealthy()
            print("twin healthy" if not bad else f"not healthy: {', '.join(bad)}")
            return 1 if bad else 0
        elif args.action == "shell":
            flags = ["--user", OPERATOR, "--workdir", str(host.home), "-e", f"HOME={host.home}"]
            os.execvpe("podman", ["podman", "exec", "-it", *flags, CONTAINER, "bash", "-l"], host.env)
        else:
            result = host.exec(args.argv)
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            return result.returncode
    except RehearsalError as exc:
        print(f"rehearsal: {exc}", file=sys.stderr)
        return 1
    finally:
        if cgroups() != before:
            print("rehearsal: HAZARD: the cgroup of PID 1 or of this process changed; see "
                  "shared/notes/real-managers.md", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
