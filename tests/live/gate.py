"""When a live test may run, and what it does when it cannot: skip on a developer's machine
(non-root, nothing installed), fail as root in CI, where ./run-tests installs everything."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from live.browser import browser_missing
from live.runner import LIVE_VENV, postgres_bin
from live.session import Running, running_stack


def live_missing() -> str | None:
    """Why live stacks cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, mount namespaces)"
    for tool in ("ip", "nsenter", "setpriv"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    if not (LIVE_VENV / "bin" / "prefect").exists():
        return f"needs the live Prefect at {LIVE_VENV} (./run-tests installs it)"
    if not (postgres_bin() / "postgres").exists():
        return "needs Debian's postgresql (./run-tests installs it)"
    return None


def require(missing: str | None, what: str) -> None:
    """Skip with the reason; as root in CI (where ./run-tests installs it all) fail instead."""
    if missing is None:
        return
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail(f"{what} cannot run in CI: {missing}")
    pytest.skip(missing)


LIVE_PYTHON = LIVE_VENV / "bin" / "python"


def require_live_prefect() -> Path:
    """The live Prefect's interpreter, for tests that run Prefect's own code without a stack:
    they need no root, only what ./run-tests installs as root."""
    require(None if LIVE_PYTHON.exists() else
            f"needs the live Prefect at {LIVE_VENV} (./run-tests installs it as root)",
            "a test of Prefect's own code")
    return LIVE_PYTHON


def require_browser() -> None:
    require(live_missing() or browser_missing(), "the browser test")


def live_stack(name: str, workdir: Path, overrides: dict[str, Any] | None = None
               ) -> Iterator[Running]:
    """Body of a module-scoped fixture: one running stack for the whole module, and nothing
    of it left behind afterwards."""
    require(live_missing(), "the live suite")
    with running_stack(name, workdir, overrides) as stack:
        yield stack
    assert stack.stack.left_behind == [], "teardown must stop every process by PID"
    killed = {n: s for n, s in stack.stack.stop_seconds.items() if stack.stack.processes[n].killed}
    if killed:  # each waited out the stop timeout: a slow teardown, and data a container lost
        warnings.warn(f"{name}: ignored the stop signal, SIGKILLed after (s): {killed}",
                      stacklevel=2)
