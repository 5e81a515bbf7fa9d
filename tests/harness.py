"""Test helpers over components.dryrun: the real program on Pulumi mocks, recorded.

Inputs are recorded as the engine would receive them, secrets still wrapped, so tests can
tell a secret input from a plain one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.dryrun import (  # noqa: F401 (re-exported for the tests)
    CONTAINER,
    RANDOM_PASSWORD,
    Evaluation,
    Registered,
    evaluate,
    generated_password,
    is_secret,
    plain_strings,
    unwrap,
)
from components.dryrun import stack_file as read_stack_file

ROOT = Path(__file__).resolve().parent.parent


def known_secret(key: str) -> str:
    return f"test-secret-{key}"


def stack_file(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A committed stack file's config; `secure:` entries become known test secrets."""
    config, secure = read_stack_file(ROOT / name)
    return config, {key: known_secret(key) for key in secure}
