"""The scripts the stack ships into containers (components/assets/: the guard, the stuck-run
sweeper, the worker launcher): where each comes from and where it lands. One directory in the
container for all of them, so the guard imports the sweeper from beside itself."""

from __future__ import annotations

from pathlib import Path

from components.spec import FileUpload

ASSETS = Path(__file__).resolve().parent / "assets"
CONTAINER_DIR = "/opt/prefect-stack"
# Imported from beside themselves by the guard and the worker launcher before anything imports
# Prefect: data Prefect imports but a long-running process never reads stays out of it
# (prefect_lean.py, README "Memory at rest").
LEAN = "prefect_lean.py"


def source(name: str) -> Path:
    return ASSETS / name


def path(name: str) -> str:
    """Where the script lands in the container."""
    return f"{CONTAINER_DIR}/{name}"


def upload(name: str) -> FileUpload:
    return FileUpload(path(name), source(name).read_text())
