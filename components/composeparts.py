"""Compose syntax pieces as plain data: ports, volumes, durations, commands, health checks,
resources. Each parser understands the short and the long compose forms and says what it
could not read instead of guessing."""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class UnreadableError(ValueError):
    """A compose value the stack cannot express; the message says why."""


@dataclass(frozen=True)
class Port:
    container: int
    host: int | None  # None: not published (container port only)
    host_ip: str = "0.0.0.0"


def parse_port(entry: Any) -> Port:
    """`8000`, `"8000:8000"`, `"127.0.0.1:8000:80"`, `"80/tcp"` or the long form."""
    if isinstance(entry, dict):
        if (entry.get("protocol") or "tcp") != "tcp":
            raise UnreadableError("only tcp ports are supported")
        published = entry.get("published")
        if published is not None and not str(published).isdigit():
            raise UnreadableError(f"published port range `{published}` is not supported")
        return Port(int(entry["target"]), int(published) if published is not None else None,
                    entry.get("host_ip") or "0.0.0.0")
    text = str(entry)
    text, _, proto = text.partition("/")
    if proto and proto != "tcp":
        raise UnreadableError(f"{proto} ports are not supported")
    if text.startswith("["):
        raise UnreadableError("IPv6 host addresses are not supported")
    parts = text.split(":")
    if any("-" in p for p in parts):
        raise UnreadableError("port ranges are not supported")
    if not all(p.isdigit() for p in parts[-2:]) or len(parts) > 3:
        raise UnreadableError("not a port mapping")
    if len(parts) == 1:
        return Port(int(parts[0]), None)
    if len(parts) == 2:
        return Port(int(parts[1]), int(parts[0]))
    return Port(int(parts[2]), int(parts[1]), parts[0] or "0.0.0.0")


@dataclass(frozen=True)
class Volume:
    target: str
    kind: str  # volume | bind
    source: str  # volume name, or absolute host path
    read_only: bool = False


def parse_volume(entry: Any, base: Path) -> Volume:
    """`name:/path[:ro]`, `./dir:/path`, `/abs:/path`, or the long form; relative host paths
    are resolved against the compose file's directory, as compose does."""
    if isinstance(entry, dict):
        kind = entry.get("type", "volume")
        if kind not in ("volume", "bind"):
            raise UnreadableError(f"{kind} mounts are not supported")
        source, target = entry.get("source"), entry.get("target")
        if not source:
            raise UnreadableError("anonymous volumes are not supported (name it)")
        read_only = bool(entry.get("read_only"))
    else:
        parts = str(entry).split(":")
        if len(parts) == 1:
            raise UnreadableError("anonymous volumes are not supported (name it)")
        source, target = parts[0], parts[1]
        modes = set(parts[2].split(",")) if len(parts) > 2 else set()
        unknown = modes - {"ro", "rw", "z", "Z", "cached", "delegated", "consistent"}
        if unknown:
            raise UnreadableError(f"mount option(s) {', '.join(sorted(unknown))} not supported")
        read_only = "ro" in modes
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
    if kind == "bind":
        source = str((base / Path(source).expanduser()).resolve())
    return Volume(target=str(target), kind=kind, source=source, read_only=read_only)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)")


def seconds(text: Any) -> int:
    """A compose duration (`1m30s`, `500ms`, `10s`) rounded up to whole seconds."""
    if isinstance(text, int | float):
        return math.ceil(text)
    value = str(text).strip()
    if not value or _DURATION.sub("", value):
        raise UnreadableError(f"`{value}` is not a duration")
    factor = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return math.ceil(sum(float(n) * factor[u] for n, u in _DURATION.findall(value)))


def command_list(value: Any) -> list[str]:
    """Compose splits a string command like a shell would (no shell runs it)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(str(value))


def health_test(test: Any) -> list[str] | None:
    """A compose healthcheck `test` as a Docker test list; None for NONE."""
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    items = [str(t) for t in test]
    if not items or items[0] == "NONE":
        return None
    if items[0] not in ("CMD", "CMD-SHELL"):
        return ["CMD", *items]
    return items


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)


def megabytes(value: Any) -> int:
    """`512m`, `1g`, `1.5GB`, bytes -> MiB."""
    if isinstance(value, int):
        return max(1, value // (1024 * 1024))
    match = _SIZE.match(str(value).strip())
    if not match:
        raise UnreadableError(f"`{value}` is not a memory size")
    scale = {"": 1 / (1024 * 1024), "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    return max(1, math.ceil(float(match.group(1)) * scale[match.group(2).lower()]))


def service_name(name: str) -> str:
    """A compose service name as a stack name (`prefect_db` -> `prefect-db`)."""
    out = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not out or not out[0].isalpha():
        out = f"s-{out}"
    return out[:41].rstrip("-")


def image_repo(image: str) -> str:
    """`docker.io/library/postgres:16@sha..` -> `postgres`; `prefecthq/prefect:3` ->
    `prefecthq/prefect`."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)
    if ":" in last[-1]:
        ref = ref.rsplit(":", 1)[0]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if parts[:1] == ["library"]:
        parts = parts[1:]
    return "/".join(parts)
