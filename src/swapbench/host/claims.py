"""What a window claims on this host, for the registry that keeps two windows apart: every service (as its
manager names it, and its health port), every candidate (its port, its container) and the GPU. It asks the
service drivers, so the window's own room (host/window/) never needs to know a manager."""

from __future__ import annotations

from swapbench.host.services import driver_for
from swapbench.host.window.registry import Claim
from swapbench.plan.load import LoadedPlan
from swapbench.plan.models import DockerLaunch, port_of


def claim_of(loaded: LoadedPlan) -> Claim:
    """Every service (by name, unit or container, and health port), every candidate (port, container) and the GPU."""
    plan = loaded.plan
    found = {f"gpu {plan.run.gpu_index}"}
    for svc in plan.services:
        found.add(f"service {svc.name}")
        found |= driver_for(svc, loaded.resolve).claims()
        if svc.health is not None and (port := port_of(svc.health.url)) is not None:
            found.add(f"port {port}")
    for target in plan.candidates:
        if target.launch is not None:
            found.add(f"port {target.launch.port}")
            if isinstance(target.launch, DockerLaunch):
                found.add(f"container {target.launch.name}")
    output = str(loaded.resolve(plan.run.output_dir))
    return Claim(plan=str(loaded.path) if loaded.path else "?", output_dir=output, resources=frozenset(found))
