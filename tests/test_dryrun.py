"""The mock-engine recorder: dependencies read by resource type, not by name alone; a failed
evaluation reported once, not once per Output it failed."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import traceback
import types

import pulumi
from harness import evaluate

from components import program
from components.dryrun import FakeDaemon, emitted_containers, evaluation_loop


def test_a_service_named_like_a_network_or_volume_gets_only_its_real_dependencies():
    """`<prefix>-app` is both the `app` network and a service named `app`; Pulumi tells them
    apart by type, and so must the recorder (a name match made a false dependency cycle)."""
    config = {"services": [
        {"name": "app", "image": "busybox:1.37.0", "healthCheck": {"command": ["CMD", "true"]},
         "dependsOn": ["data"], "volumes": [{"name": "data", "mountPath": "/data"}]},
        {"name": "data", "image": "busybox:1.37.0", "healthCheck": {"command": ["CMD", "true"]}}]}
    containers = {c.name: c for c in emitted_containers(evaluate(config))}
    assert containers["prefect-app"].depends_on == ("prefect-data",)
    assert containers["prefect-data"].depends_on == ()
    names = list(containers)
    assert names.index("prefect-data") < names.index("prefect-app")


def failed_evaluation() -> str:
    """The error's message only: nothing here keeps its traceback (and so its futures)."""
    try:
        evaluate({"database": {"kind": "postgres"}},
                 daemon=FakeDaemon(exit_codes={"prefect-db-init": 1}))
    except pulumi.RunError as error:
        return str(error)
    return "no error"


def collected_with(error: Exception) -> None:
    """An Output's future on the evaluations' loop that failed with `error` and was never
    awaited, as the SDK leaves one per Output built on a failed job, freed now: asyncio
    reports it to the loop's exception handler from the future's finalizer."""
    future = evaluation_loop().create_future()
    future.set_exception(error)
    del future


def test_a_failed_evaluation_is_raised_once_not_logged_again_for_every_output_it_failed(caplog):
    """Its error sits in every Output built on the failed job; asyncio would log each copy as
    "never retrieved" when collected (a traceback each), while other errors still show."""
    message = failed_evaluation()
    assert "setup job `db-init` failed" in message
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        collected_with(pulumi.RunError(message))
        assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
        collected_with(RuntimeError("not raised by any evaluation"))
    assert [r for r in caplog.records if "never retrieved" in r.getMessage()]


def evaluation_tasks_reachable_from(root: object) -> list[asyncio.Task]:
    """The tasks of the evaluations' loop that `root` keeps alive, through any chain of
    references but code (a function's globals lead to every module) and the loop itself
    (shared by every evaluation)."""
    seen, todo, found = {id(root)}, [root], []
    while todo:
        for referent in gc.get_referents(todo.pop()):
            if id(referent) in seen or isinstance(referent, (
                    type, types.ModuleType, types.FunctionType, asyncio.AbstractEventLoop)):
                continue
            seen.add(id(referent))
            if isinstance(referent, asyncio.Task) and referent.get_loop() is evaluation_loop():
                found.append(referent)
            todo.append(referent)
    return found


def test_a_kept_evaluation_keeps_none_of_the_programs_asyncio_tasks_alive():
    """Tests keep evaluations for the session (harness.evaluate); had an evaluation kept the
    program's stack, its Outputs would keep each of the ~1,000 tasks that made them, and every
    later evaluation's wait for pending work (`asyncio.all_tasks`) walks every live task:
    evaluations then grow slower the more a test process has kept."""
    kept = evaluate({"workers": [{"name": "w"}]}, daemon=FakeDaemon())
    assert kept.plan is not None and kept.containers()
    assert evaluation_tasks_reachable_from(kept) == []


def test_the_program_runs_on_a_thread_of_its_own_below_a_short_stack(monkeypatch):
    """The SDK records the caller's stack trace, every frame, for each resource it registers:
    run below a test runner (or any deep caller), that walks the caller's frames too."""
    seen: list[tuple[threading.Thread, int]] = []
    real_run = program.run

    def run():
        seen.append((threading.current_thread(), len(traceback.extract_stack())))
        return real_run()

    monkeypatch.setattr(program, "run", run)
    evaluate({"workers": []}, daemon=FakeDaemon())
    [(thread, depth)] = seen
    assert thread is not threading.current_thread()
    assert depth < len(traceback.extract_stack())
