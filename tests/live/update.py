"""What a second `pulumi up` does to the containers of a running stack: pure planning for
`LiveStack.update`, faithful to pulumi-docker 5.x and the Pulumi engine.

- A change of `image`, `command`, `envs`, `labels`, `ports`, `networks_advanced`, `mounts`,
  `uploads`, `user` or `working_dir` replaces the container (the provider marks them
  ForceNew). Named volumes and host directories are not containers: their data stays.
- A health-check edit is an in-place update that Docker silently ignores, unless the
  container lists `healthcheck` in `replace_on_changes` (ours do): then it is replaced.
- `memory`, `cpus`, `restart`, `wait`, `must_run` update in place; the process keeps running.
- A container replaced with `delete_before_replace` takes with it, transitively, every
  container whose inputs are built from its outputs (the engine's property dependencies,
  e.g. a job-gate label computed from a job's exit code): the engine marks those inputs
  unknown, the provider's diff says "replace", so they are deleted first and created again
  after it. A container that only `depends_on` it is left running.
- One-shot jobs run again only when replaced; new containers are created; containers no
  longer emitted are deleted last, dependents first.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.dryrun import EmittedContainer

FORCE_NEW = ("image", "command", "env", "labels", "ports", "networks", "mounts", "uploads",
             "user", "working_dir")


@dataclass(frozen=True)
class Update:
    """The effect of one `pulumi up`, by container name, each in the order it happens."""

    replaced: tuple[str, ...]  # stopped, then started again from the new spec
    created: tuple[str, ...]
    removed: tuple[str, ...]
    ignored: tuple[str, ...]  # changed only in what Docker ignores in place (kept running)


def changed_inputs(old: EmittedContainer, new: EmittedContainer) -> tuple[str, ...]:
    """The inputs whose change replaces `old` (see the module docstring)."""
    fields = [f for f in FORCE_NEW if getattr(old, f) != getattr(new, f)]
    if old.healthcheck != new.healthcheck and "healthcheck" in new.replace_on_changes:
        fields.append("healthcheck")
    return tuple(fields)


def plan_update(old: list[EmittedContainer], new: list[EmittedContainer]) -> Update:
    """Which containers a second `pulumi up` replaces, creates and deletes."""
    before = {c.name: c for c in old}
    after = {c.name: c for c in new}
    replaced = {name for name, c in after.items()
                if name in before and changed_inputs(before[name], c)}
    roots = [name for name in replaced if before[name].delete_before_replace]
    # The engine reads property dependencies from the state (the old registration).
    while roots:
        root = roots.pop()
        for name, c in before.items():
            if name in after and name not in replaced and root in c.input_dependencies:
                replaced.add(name)
                if c.delete_before_replace:
                    roots.append(name)
    ignored = tuple(name for name, c in after.items() if name in before and name not in replaced
                    and before[name].healthcheck != c.healthcheck)
    return Update(
        replaced=tuple(c.name for c in new if c.name in replaced),
        created=tuple(c.name for c in new if c.name not in before),
        removed=tuple(c.name for c in reversed(old) if c.name not in after),
        ignored=ignored)

