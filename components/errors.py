"""Configuration errors that name the key and what is expected."""

from __future__ import annotations

from dataclasses import dataclass

from components.config import PROJECT


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the stack config, at a dotted key path (`server.port`)."""

    path: str
    message: str

    def __str__(self) -> str:
        # A path with a namespace (`prefectstack:server`) is a whole key from another one.
        key = self.path if ":" in self.path else f"{PROJECT}:{self.path}" if self.path else PROJECT
        return f"{key}: {self.message}"


class ConfigError(Exception):
    """Raised before any resource is registered; the message lists every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid stack configuration ({count}):\n{lines}")


def key_path(*parts: str | int) -> str:
    """`("workers", 1, "name")` -> `workers[1].name`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
