"""Each container's own /tmp, as Docker gives every container one (its writable layer; kept
across restarts, new for a replaced container) and the Kubernetes plan every pod (an emptyDir).

Why it matters: the guard of each Prefect server and services process writes its status to
/tmp/prefect-stack-guard.json and its health check reads it back; with the host's /tmp shared,
one process's check would judge another's status.

The harness itself lives under /tmp (pytest's tmp_path: the stack's work directory with HOME,
volumes and uploaded files) and so may the checkout (its .live venvs): those host paths are
bound back in at the same paths inside the private /tmp before it covers the host's.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Iterable
from pathlib import Path

TMP = Path("/tmp")


def fresh(workdir: Path, container: str) -> Path:
    """A new container's /tmp on the host: empty, world-writable, sticky (as in an image)."""
    private = workdir / "container-tmp" / container
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir(parents=True)
    private.chmod(0o1777)
    return private


def under_tmp(path: Path) -> bool:
    return path != TMP and path.is_relative_to(TMP)


def mount_point(private: Path, target: Path, as_file: bool) -> None:
    """Where `target` (a path under /tmp) will be, created inside the private /tmp. Its
    directories take the owner and mode of the host's (pytest's basetemp is 0700: a non-root
    process must not reach through the private /tmp what it cannot reach on the host)."""
    for outer in [*reversed(target.parents), target]:
        if not under_tmp(outer):
            continue
        inner = private / outer.relative_to(TMP)
        if inner.exists():
            continue
        if outer == target and as_file:
            inner.touch()
        else:
            inner.mkdir()
        if outer.exists():
            stat = outer.stat()
            os.chown(inner, stat.st_uid, stat.st_gid)
            inner.chmod(stat.st_mode & 0o7777)


def setup(private: Path, keep: Iterable[Path], targets: Iterable[tuple[Path, bool]]) -> list[str]:
    """Shell commands, run in the container's own mount namespace before its other mounts:
    the host paths under /tmp in `keep` bound back in at their paths, then the private
    directory on /tmp. `targets` (path, is a file): the container's mount targets under /tmp,
    whose mount points must exist in the private /tmp."""
    kept = sorted({p.resolve() for p in keep if under_tmp(p.resolve())})
    outermost = [p for p in kept if not any(p != q and p.is_relative_to(q) for q in kept)]
    commands = []
    for path in outermost:
        mount_point(private, path, as_file=path.is_file())
        inner = private / path.relative_to(TMP)
        commands.append(f"mount --bind {shlex.quote(str(path))} {shlex.quote(str(inner))}")
    for target, as_file in targets:
        if under_tmp(target):
            mount_point(private, target, as_file)
    # --rbind: the binds just made inside the private directory come along.
    return [*commands, f"mount --rbind {shlex.quote(str(private))} {TMP}"]
