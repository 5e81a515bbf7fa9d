"""One-shot jobs: a failed job stops the `up` with a useful error, the next `up` runs it
again, a job that succeeded is left alone, and job logs stay secret (components/jobs.py)."""

from __future__ import annotations

import subprocess

import pulumi
import pytest
from harness import CONTAINER, Evaluation, evaluate, stack_file

from components.dryrun import FakeDaemon
from components.jobs import PreviousRun, next_run, previous_run, wrap_command

PROD_JOBS = ("prefect-prod-db-init", "prefect-prod-pool-prod-pool")


def jobs(ev) -> dict[str, dict]:
    return {n: c for n, c in ev.containers().items() if c.get("mustRun") is False}


def run_wrapped(command: list[str], stand_in: list[str]) -> tuple[int, list[str]]:
    """Run an emitted job's wrapper for real with `stand_in` as the job's own command."""
    assert command[:2] == ["sh", "-c"]
    done = subprocess.run([*command[:4], *stand_in], capture_output=True, text=True,
                          timeout=10, check=False)
    return done.returncode, done.stdout.splitlines()


def prod(daemon: FakeDaemon | None = None, into=None, **config):
    base, secrets = stack_file("Pulumi.prod.yaml")
    return evaluate({**base, **config}, secrets, stack="prod", daemon=daemon, into=into)


# --- the wrapper and the decision, as plain functions ---------------------------------------

def test_wrapper_prints_its_run_and_keeps_the_jobs_exit_code_and_arguments():
    code, lines = run_wrapped(wrap_command("db-init", 4, ["x"]),
                              ["sh", "-c", 'echo "args: $*"; exit 3', "-", "a b", "c"])
    assert code == 3
    assert lines == ["prefect-stack job db-init run 4: started", "args: a b c",
                     "prefect-stack job db-init run 4: exit 3"]


@pytest.mark.parametrize("lines, expected", [
    ([], None),
    (["prefect-stack job db-init run 2: started", "ok",
      "prefect-stack job db-init run 2: exit 0"], PreviousRun(2, 0)),
    (["prefect-stack job db-init run 1: started", "boom",
      "prefect-stack job db-init run 1: exit 2"], PreviousRun(1, 2)),
    (["prefect-stack job db-init run 3: started", "killed mid-way"], PreviousRun(3, None)),
    (["prefect-stack job other run 9: exit 1", "echo prefect-stack job db-init run 5: exit 0"],
     None),
])
def test_previous_run_is_the_last_marker_of_this_job(lines, expected):
    assert previous_run("db-init", lines) == expected


@pytest.mark.parametrize("previous, run", [
    (None, 1), (PreviousRun(3, 0), 3), (PreviousRun(3, 1), 4), (PreviousRun(3, None), 4),
    (PreviousRun(1, 137), 2)])
def test_a_job_runs_again_after_anything_but_success(previous, run):
    assert next_run(previous) == run


# --- the program on mocks ------------------------------------------------------------------

def test_a_failed_job_stops_the_up_with_the_job_its_output_and_what_happens_next():
    ev = Evaluation()
    with pytest.raises(pulumi.RunError) as err:
        prod(FakeDaemon(exit_codes={"prefect-prod-db-init": 3}), into=ev)
    message = str(err.value)
    assert "setup job `db-init` failed" in message
    assert "exited with code 3 (run 1)" in message
    assert "`docker logs prefect-prod-db-init`" in message
    assert "run `pulumi up` again: it runs `db-init` again as run 2" in message
    created = {r.name for r in ev.of_type(CONTAINER)}
    assert "prefect-prod-db-init" in created and "prefect-prod-postgres" in created
    # everything gated on db-init (the server, and so workers, api, proxy) was not created
    assert not any(n.startswith("prefect-prod-prefect-server") for n in created), created
    assert not any("-worker-" in n or n.startswith("prefect-prod-api") for n in created)


def test_the_error_names_the_remote_docker_host_for_docker_logs():
    with pytest.raises(pulumi.RunError) as err:
        prod(FakeDaemon(exit_codes={"prefect-prod-db-init": 1}),
             docker={"host": "ssh://deploy@box"})
    assert "`docker -H ssh://deploy@box logs prefect-prod-db-init`" in str(err.value)


def test_next_up_runs_the_failed_job_again_and_leaves_the_succeeded_one_alone():
    first = jobs(prod())
    assert {n: c["command"][3] for n, c in first.items()} == {
        n: f"{n.removeprefix('prefect-prod-')}-run-1" for n in PROD_JOBS}
    failed_code, failed_log = run_wrapped(first["prefect-prod-db-init"]["command"], ["false"])
    ok_code, ok_log = run_wrapped(first["prefect-prod-pool-prod-pool"]["command"], ["true"])
    assert (failed_code, ok_code) == (1, 0)

    second = jobs(prod(FakeDaemon(logs={"prefect-prod-db-init": failed_log,
                                        "prefect-prod-pool-prod-pool": ok_log})))
    changed = {n for n in PROD_JOBS if second[n] != first[n]}
    assert changed == {"prefect-prod-db-init"}
    assert second["prefect-prod-db-init"]["command"][3] == "db-init-run-2"
    assert second["prefect-prod-db-init"]["command"][4:] == first["prefect-prod-db-init"]["command"][4:]


def test_an_unchanged_stack_whose_jobs_succeeded_registers_exactly_what_it_did_before():
    fresh = prod()
    logs = {n: run_wrapped(c["command"], ["true"])[1] for n, c in jobs(fresh).items()}
    again = prod(FakeDaemon(logs=logs))
    # (registration order varies from run to run; the engine matches resources by URN)
    assert {(r.type, r.name): r.plain for r in again.resources} == \
        {(r.type, r.name): r.plain for r in fresh.resources}
    assert len(again.resources) == len(fresh.resources)


def test_a_job_cut_short_runs_again_even_when_its_output_is_longer_than_the_tail():
    long_output = ["prefect-stack job db-init run 5: started", *(f"line {i}" for i in range(50))]
    ev = prod(FakeDaemon(logs={"prefect-prod-db-init": long_output}))
    assert jobs(ev)["prefect-prod-db-init"]["command"][3] == "db-init-run-6"
    tails = [c.args.get("tail") for c in ev.calls if c.args.get("name") == "prefect-prod-db-init"]
    assert tails == ["20", None]  # the whole log only when the last lines had no exit


def test_job_logs_are_read_through_the_remote_docker_provider():
    ev = prod(docker={"host": "ssh://deploy@box"})
    calls = [c for c in ev.calls if c.token == "docker:index/getLogs:getLogs"]
    assert sorted(c.args["name"] for c in calls) == sorted(PROD_JOBS)
    assert {tuple(c.provider.split("::")[-3:-1]) for c in calls} == {
        ("prefect-stack:index:PrefectStack$pulumi:providers:docker", "docker")}


def test_job_logs_are_kept_secret_in_state():
    ev = prod()
    for name in ev.containers():
        secret_outputs = ev.options[name].additional_secret_outputs or []
        assert ("containerLogs" in secret_outputs) == (name in PROD_JOBS), name


def test_preview_reads_the_same_logs_and_plans_the_same_job_commands_as_up():
    fresh = jobs(prod())
    failed = {n: run_wrapped(c["command"], ["false"])[1] for n, c in fresh.items()}
    succeeded = {n: run_wrapped(c["command"], ["true"])[1] for n, c in fresh.items()}
    for logs, run in ((succeeded, "run-1"), (failed, "run-2")):
        previewed = jobs(evaluate(*stack_file("Pulumi.prod.yaml"), stack="prod", preview=True,
                                  daemon=FakeDaemon(logs=logs)))
        assert sorted(previewed) == sorted(PROD_JOBS)
        assert all(c["command"][3].endswith(f"-{run}") for c in previewed.values()), previewed


def test_a_job_with_its_own_entrypoint_carries_the_run_number_in_the_entrypoint():
    # reference 003's bucket job: minio/mc's entrypoint is `mc`, so the job runs a shell
    config = {"setupJobs": [{"name": "minio-bucket", "image": "minio/mc:RELEASE.2025-01-17T23-25-50Z",
                             "entrypoint": [], "command": ["sh", "-c", "mc mb local/bucket"]}]}
    name = "prefect-minio-bucket"
    first = jobs(evaluate(config))[name]
    assert first["entrypoints"][3] == "minio-bucket-run-1"
    code, log = run_wrapped(first["entrypoints"], ["false"])
    assert code == 1
    second = jobs(evaluate(config, daemon=FakeDaemon(logs={name: log})))[name]
    assert second["entrypoints"][3] == "minio-bucket-run-2"  # entrypoint is ForceNew too
    assert second["command"] == first["command"]


# --- the wrapper needs `sh` in the job's image -------------------------------------------------

def setup_job(image: str, **extra) -> dict:
    return {"setupJobs": [{"name": "migrate", "image": image, "command": ["/app/migrate"],
                           **extra}]}


@pytest.mark.parametrize("image", ["gcr.io/distroless/python3-debian12:nonroot",
                                   "cgr.dev/chainguard/static:latest"])
def test_a_job_image_known_to_have_no_shell_is_refused_even_with_an_entrypoint(image):
    from test_config_errors import rejected

    for extra in ({}, {"entrypoint": ["/app/migrate"]}):
        message = rejected(setup_job(image, **extra))
        assert f"prefect-stack:setupJobs[0].image: `{image}` has no `sh`" in message
        assert "`:debug` variant" in message


@pytest.mark.parametrize("image", ["gcr.io/distroless/python3-debian12:debug-nonroot",
                                   "ghcr.io/acme/etl:1.4.0"])
def test_a_job_image_with_a_shell_or_not_known_to_lack_one_is_accepted(image):
    job = evaluate(setup_job(image)).container("prefect-migrate")
    assert job["command"][:2] == ["sh", "-c"]  # what the refusal is about
