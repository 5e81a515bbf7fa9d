"""Test helpers over components.dryrun: the real program on Pulumi mocks, recorded.

Inputs are recorded as the engine would receive them, secrets still wrapped, so tests can
tell a secret input from a plain one.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from components import dryrun
from components.config import PROJECT
from components.dryrun import (  # noqa: F401 (re-exported for the tests)
    CONTAINER,
    RANDOM_PASSWORD,
    Evaluation,
    Registered,
    generated_password,
    is_secret,
    plain_strings,
    unwrap,
)
from components.dryrun import stack_file as read_stack_file
from components.loader import load
from components.spec import EnvValue, StackPlan

if TYPE_CHECKING:  # a fresh process importing these helpers (tests/test_churn.py) skips pytest
    import pytest

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
_EVALUATIONS: dict[str, Evaluation] = {}
_STACK_FILES: dict[tuple[str, int], tuple[dict[str, Any], list[str]]] = {}


def evaluate(config: Mapping[str, Any], secrets: Mapping[str, str] | None = None,
             stack: str = "test", plain: Mapping[str, str] | None = None,
             **options: Any) -> Evaluation:
    """`components.dryrun.evaluate`, run once per distinct input for the whole session: many
    test files judge the same committed stacks, and each evaluation costs up to a second.
    Callers get the same Evaluation back, so they must only read it. Calls with options
    (into=, password_for=, daemon=, preview=) always run afresh; so does anything that fails.
    An option given as None is no option."""
    options = {key: value for key, value in options.items() if value is not None}
    if options:
        return dryrun.evaluate(config, secrets, stack, plain, **options)
    key = json.dumps([config, secrets, stack, plain, os.getcwd()], sort_keys=True)
    if key not in _EVALUATIONS:
        _EVALUATIONS[key] = dryrun.evaluate(config, secrets, stack, plain)
    return _EVALUATIONS[key]


def planned(config: Mapping[str, Any], secrets: Mapping[str, str] | None = None) -> StackPlan:
    """The backend-neutral plan the program would deploy, read and checked as `pulumi up`
    reads config, without Pulumi: milliseconds where an evaluation takes a tenth of a second
    or more. For tests of Prefect knowledge (settings, commands, scripts); what the Docker
    provider receives is judged on `evaluate`. A ConfigError raises as it does there."""
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    values.update(secrets or {})
    return load(values, set(secrets or {})).plan


def planned_env(config: Mapping[str, Any], service: str,
                secrets: Mapping[str, str] | None = None) -> dict[str, str]:
    """One service's plain env in the plan; a value built from secrets stays its template
    (`SecretText.template`, e.g. `${basicAuthPassword}`)."""
    return {k: template(v) for k, v in planned(config, secrets).service(service).env.items()}


def template(value: EnvValue) -> str:
    """A plan value as text: a value built from secrets as its template."""
    return value if isinstance(value, str) else value.template


def secret_values(stack_plan: StackPlan, secrets: Mapping[str, str]) -> dict[str, str]:
    """The value behind each secret the plan uses, as on the mocks: the one set in config,
    else the generated password's stand-in (`generated_password`)."""
    return {s.key: secrets[s.key] if s.key in secrets else generated_password(s.key)
            for s in stack_plan.secrets}


def filled(value: EnvValue, values: Mapping[str, str], stack: str) -> str:
    """A plan value with its secrets filled in as the program fills them for `stack` (bcrypt
    salted per stack and key)."""
    return value if isinstance(value, str) else value.render(values, f"{PROJECT}/{stack}")


def check_jsonschema(builtin_schema: str, paths: list[Path]) -> tuple[int, str]:
    """check-jsonschema's own command with one of its built-in schemas, run in this process
    through click's test runner: the command's checks, without an interpreter start (about
    half a second of CPU) per call. Returns its exit code and output."""
    from check_jsonschema import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--builtin-schema", builtin_schema, *map(str, paths)])
    return result.exit_code, result.output


def started_for(request: pytest.FixtureRequest, test_name: str,
                start: Callable[[], tuple[T, subprocess.Popen[str]]]
                ) -> Iterator[tuple[T, subprocess.Popen[str]] | Exception | None]:
    """Body of a module-scoped fixture that starts a slow process (a scanner, an interpreter
    importing Prefect) with the module's first test, for the one test that reads its answer
    while the others run. Yields None when that test is not selected; an error in starting is
    yielded for that test to raise (not raised in every test of the module). The process is
    killed at the end."""
    if not any(item.name == test_name for item in request.session.items):
        yield None
        return
    try:
        data, process = start()
    except Exception as err:
        yield err
        return
    yield data, process
    process.kill()
    process.communicate()


def known_secret(key: str) -> str:
    return f"test-secret-{key}"


def stack_file(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A committed stack file's config; `secure:` entries become known test secrets. Parsed
    once per file version (the pure-Python YAML parser took seconds over the suite's hundreds
    of reads); each caller gets its own copy to change."""
    path = ROOT / name
    version = (str(path), path.stat().st_mtime_ns)
    if version not in _STACK_FILES:
        _STACK_FILES[version] = read_stack_file(path)
    config, secure = copy.deepcopy(_STACK_FILES[version])
    return config, {key: known_secret(key) for key in secure}


def registrations(stack_names: Mapping[str, str]) -> dict[str, list]:
    """Each stack file's registrations (type, name, inputs) as JSON would carry them, evaluated
    as the stack named for it (the name other tests evaluate that file under shares their
    cached evaluation)."""
    runs = {}
    for name, stack in stack_names.items():
        config, secrets = stack_file(name)
        runs[name] = [[r.type, r.name, r.inputs] for r in evaluate(config, secrets, stack).resources]
    return json.loads(json.dumps(runs))

