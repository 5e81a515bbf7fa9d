"""Container names must be unique on the Docker host, replicas included.

A group with N > 1 replicas names its containers `<prefix>-<name>-1` ... `-N`
(spec.replica_names), so `api` with 2 replicas and a service called `api-1` would both want
`<prefix>-api-1`: Docker refuses the second create halfway through `pulumi up`. The DNS-name
check (checks._names) cannot see this; here every container name is expanded first.
"""

from __future__ import annotations

from collections.abc import Iterator

from components import backups, monitoring, plan
from components.config import StackConfig
from components.errors import Problem
from components.spec import replica_names


def _groups(cfg: StackConfig) -> list[tuple[str, str, int]]:
    """(config path or owner, name, replicas) of every container group, the stack's first."""
    built_in = [n for n in plan.RESERVED_NAMES if n != plan.SERVER]
    groups = [("server.replicas", plan.SERVER, cfg.server.replicas)]
    groups += [("the stack itself", name, 1) for name in built_in]
    groups += [("monitoring", name, 1) for name in monitoring.service_names(cfg)]
    groups += [("backups", name, 1) for name in backups.service_names(cfg)]
    for i, pool in enumerate(cfg.workers):
        groups += [(f"workers[{i}].replicas", f"worker-{pool.name}", pool.replicas),
                   (f"workers[{i}].name", f"pool-{pool.name}", 1)]
    groups += [(f"{path}.name", owner.name, owner.replicas)
               for path, owner in plan.routed_workloads(cfg)]
    groups += [(f"setupJobs[{i}].name", job.name, 1) for i, job in enumerate(cfg.setup_jobs)]
    return groups


def problems(cfg: StackConfig) -> Iterator[Problem]:
    prefix = cfg.network.name_prefix
    taken: dict[str, tuple[str, str, int]] = {}
    for group in _groups(cfg):
        path, name, replicas = group
        for container in replica_names(prefix, name, replicas):
            if container not in taken:
                taken[container] = group
                continue
            other_path, other_name, other_replicas = taken[container]
            if other_name == name:
                break  # the same name twice: the DNS-name check reports it
            whose = (f"a replica of `{other_name}` ({other_path}: {other_replicas} replicas "
                     f"are named {other_name}-1 ... {other_name}-{other_replicas})"
                     if other_replicas > 1 else f"`{other_name}` ({other_path})")
            field = path if path.endswith(".name") else path.rsplit(".", 1)[0] + ".name"
            yield Problem(field, f"container name `{container}` is also {whose}; rename one of "
                          "them")
            break
