"""A fleet of two rehearsal twins for the swapbench.fleet collection: a controller folder of the test's own (its
key, its known_hosts, its inventory, its results), and real ansible-core driving both twins over their real sshd.

The first twin is reached on 127.0.0.1, the second on its end of the veth pair (rehearsal.host.Link): no other
address is ever a target. Host keys are checked against the controller's known_hosts (StrictHostKeyChecking=yes).
Ansible's ControlPersist masters live under the folder, and `close_masters` ends them after each play.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rehearsal.host import OPERATOR, SSH_PORT, RehearsalHost

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # ansible-playbook and swapbench of this environment


@dataclass(frozen=True)
class Fleet:
    """The controller's side: `hosts` maps inventory names to twins, `plans` each one's plan on its box."""

    folder: Path
    hosts: dict[str, RehearsalHost]
    plans: dict[str, Path]

    @classmethod
    def make(cls, folder: Path, hosts: dict[str, RehearsalHost], plans: dict[str, Path]) -> Fleet:
        """A fresh key authorized on every twin, and a known_hosts holding each twin's host key."""
        folder.mkdir(parents=True, exist_ok=True)
        key = folder / "id_ed25519"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        for twin in hosts.values():
            twin.authorize((folder / "id_ed25519.pub").read_text())
        (folder / "known_hosts").write_text("".join(twin.known_hosts_line() for twin in hosts.values()))
        return cls(folder, hosts, plans)

    @property
    def results(self) -> Path:
        return self.folder / "results"

    @property
    def history_db(self) -> Path:
        return self.folder / "data" / "swapbench" / "history.sqlite"

    def inventory(self, plans: dict[str, Path] | None = None, env: dict[str, dict[str, str]] | None = None) -> Path:
        """The group `swapbench`, one entry per twin, its plan a host variable (as a user would set it). `env` gives
        a host's SWAPBENCH_* test hooks, passed by ssh's SetEnv (the twins' sshd accepts them). JSON is YAML."""
        common = " ".join([f"-o UserKnownHostsFile={self.folder / 'known_hosts'}", "-o GlobalKnownHostsFile=/dev/null",
                           "-o StrictHostKeyChecking=yes", "-o IdentitiesOnly=yes"])  # fmt: skip
        hosts: dict[str, dict[str, object]] = {}
        for name, twin in self.hosts.items():
            entry: dict[str, object] = {"ansible_host": twin.address, "ansible_port": SSH_PORT,
                                        "swapbench_plan": str((plans or {}).get(name, self.plans[name]))}  # fmt: skip
            if hooks := (env or {}).get(name):
                entry["ansible_ssh_extra_args"] = "-o " + shlex.quote(
                    "SetEnv=" + " ".join(f'"{k}={v}"' for k, v in hooks.items())
                )
            hosts[name] = entry
        group = {
            "hosts": hosts,
            "vars": {
                "ansible_user": OPERATOR,
                "ansible_ssh_private_key_file": str(self.folder / "id_ed25519"),
                "ansible_ssh_common_args": common,
                "ansible_python_interpreter": "/usr/bin/python3",
                "swapbench_controller_command": str(BIN / "swapbench"),
            },
        }
        path = self.folder / "inventory.yml"
        path.write_text(json.dumps({"all": {"children": {"swapbench": group}}}, indent=2) + "\n")
        return path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(REPO),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(self.folder / "ansible-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.folder / "cp"),
            "XDG_DATA_HOME": str(self.folder / "data"),  # the controller's history database
        }

    def argv(self, session: str, extra: dict[str, object] | None = None, plans: dict[str, Path] | None = None,
             env: dict[str, dict[str, str]] | None = None) -> list[str]:  # fmt: skip
        """ansible-playbook of the collection's canary playbook, the session and results folder as extra vars."""
        variables = {"swapbench_session": session, "swapbench_results_dir": str(self.results), **(extra or {})}
        return [str(BIN / "ansible-playbook"), "-i", str(self.inventory(plans, env)), "swapbench.fleet.canary",
                "-e", json.dumps(variables)]  # fmt: skip

    def play(self, session: str, extra: dict[str, object] | None = None, plans: dict[str, Path] | None = None,
             timeout_s: float = 900.0) -> subprocess.CompletedProcess[str]:  # fmt: skip
        try:
            return subprocess.run(self.argv(session, extra, plans), capture_output=True, text=True, env=self.env(),
                                  timeout=timeout_s, check=False)  # fmt: skip
        finally:
            self.close_masters()

    def close_masters(self) -> None:
        """End Ansible's ControlPersist masters (they would outlive the play by 60 s, with their sshd sessions)."""
        folder = self.folder / "cp"
        for socket_path in folder.glob("*") if folder.exists() else ():
            subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "fleet-master"],
                           capture_output=True, timeout=30, check=False)  # fmt: skip

    def fetched(self) -> dict[str, list[Path]]:
        """The run folders fetched to the controller, per inventory name."""
        if not self.results.exists():
            return {}
        return {
            host.name: sorted(p for p in host.iterdir() if p.is_dir())
            for host in sorted(self.results.iterdir())
            if host.is_dir() and host.name in self.hosts
        }
