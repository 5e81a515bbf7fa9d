"""What LiveStack.update replaces, creates and deletes for a second `pulumi up`
(tests/live/update.py): pure planning, checked against pulumi-docker and engine semantics."""

from __future__ import annotations

import dataclasses

from live.session import emitted
from live.update import plan_update

from components.dryrun import EmittedContainer, EmittedMount


def container(name: str, **fields) -> EmittedContainer:
    base = EmittedContainer(
        name=name, aliases=(name,), image="img:1", command=None, env={}, uploads={},
        healthcheck=("CMD", "true"), networks={"app": (name,)}, mounts=(), ports=(),
        user=None, working_dir=None, one_shot=False, wait_healthy=False, depends_on=(),
        delete_before_replace=True, replace_on_changes=("healthcheck",))
    return dataclasses.replace(base, **fields)


DB = container("db", env={"PASSWORD": "a"},
               mounts=(EmittedMount("/data", "volume", "db-data", False),))
JOB = container("job", one_shot=True, depends_on=("db",), env={"PASSWORD": "a"})
GATED = container("server", depends_on=("job",), input_dependencies=("job",))
AFTER_ONLY = container("proxy", depends_on=("server",))
STACK = [DB, JOB, GATED, AFTER_ONLY]


def test_an_unchanged_stack_changes_nothing():
    assert plan_update(STACK, STACK) == plan_update(STACK, list(STACK))
    change = plan_update(STACK, STACK)
    assert (change.replaced, change.created, change.removed) == ((), (), ())


def test_every_force_new_input_replaces_the_container():
    for field, value in [("image", "img:2"), ("command", ("run",)), ("env", {"X": "1"}),
                         ("labels", {"l": "v"}), ("ports", (("127.0.0.1", 80, 80),)),
                         ("networks", {"data": ("proxy",)}), ("uploads", {"/f": "x"}),
                         ("mounts", (EmittedMount("/m", "volume", "v", False),)),
                         ("user", "1000"), ("working_dir", "/w")]:
        change = plan_update(STACK, [DB, JOB, GATED, dataclasses.replace(AFTER_ONLY,
                                                                         **{field: value})])
        assert change.replaced == ("proxy",), field


def test_in_place_updates_keep_the_container_running():
    changed = dataclasses.replace(AFTER_ONLY, wait_healthy=True, one_shot=False,
                                  depends_on=("db", "server"))
    assert plan_update(STACK, [DB, JOB, GATED, changed]).replaced == ()


def test_a_health_check_edit_replaces_only_with_replace_on_changes():
    edited = dataclasses.replace(AFTER_ONLY, healthcheck=("CMD", "false"))
    assert plan_update(STACK, [DB, JOB, GATED, edited]).replaced == ("proxy",)
    plain = dataclasses.replace(AFTER_ONLY, replace_on_changes=())
    ignored = plan_update([DB, JOB, GATED, plain],
                          [DB, JOB, GATED, dataclasses.replace(plain, healthcheck=("CMD", "false"))])
    assert (ignored.replaced, ignored.ignored) == ((), ("proxy",))


def test_a_delete_before_replace_takes_along_containers_built_from_its_outputs_only():
    rerun = dataclasses.replace(JOB, env={"PASSWORD": "b"})
    change = plan_update(STACK, [DB, rerun, GATED, AFTER_ONLY])
    # The server's gate label is computed from the job's exit code: replaced with it.
    # The proxy only waits for the server (depends_on): left running.
    assert change.replaced == ("job", "server")


def test_dependents_stay_when_the_replaced_container_creates_before_deleting():
    job = dataclasses.replace(JOB, delete_before_replace=False)
    change = plan_update([DB, job, GATED, AFTER_ONLY],
                         [DB, dataclasses.replace(job, env={"PASSWORD": "b"}), GATED, AFTER_ONLY])
    assert change.replaced == ("job",)


def test_dependent_replacement_is_transitive():
    third = container("worker", input_dependencies=("server",))
    old = [*STACK, third]
    change = plan_update(old, [DB, dataclasses.replace(JOB, env={"PASSWORD": "b"}), GATED,
                               AFTER_ONLY, third])
    assert change.replaced == ("job", "server", "worker")


def test_new_containers_are_created_and_missing_ones_deleted_dependents_first():
    new = container("backup", depends_on=("db",))
    change = plan_update(STACK, [DB, JOB, new])
    assert change.created == ("backup",)
    assert change.removed == ("proxy", "server")


def test_rotating_the_superuser_password_replaces_postgres_and_what_its_init_job_gates():
    before = emitted("prod", secrets={"postgresPassword": "one"})
    after = emitted("prod", secrets={"postgresPassword": "two"})
    replaced = {c.split("prefect-prod-", 1)[1] for c in plan_update(before, after).replaced}
    # db-init re-runs (new PGPASSWORD); the containers gated on it are replaced with it;
    # workers and the app keep their own role passwords but carry db-init's gate.
    assert {"postgres", "db-init", "prefect-server", "backup"} <= replaced
    assert "proxy" not in replaced
