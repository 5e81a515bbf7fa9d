"""Memory of the scale-out Prefect processes: the API replicas and services processes run as
`python -OO` (docstrings are ~12 MiB of each one's PSS at rest, README "Benchmark"), from
bytecode the scale-out image compiles at the same level."""

from __future__ import annotations

import re

from harness import ROOT

from components import plan, scaleout
from components.config import StackConfig


def ha(**server) -> StackConfig:
    return StackConfig.model_validate({
        "database": {"kind": "postgres"}, "redis": {"enabled": True},
        "server": {"replicas": 2, "servicesReplicas": 2, **server}})


def test_scale_out_api_replicas_and_services_run_without_docstrings_but_not_the_migrate_job():
    built = plan.build_plan(ha())
    for name in ("prefect-server", "prefect-services"):
        assert built.service(name).env["PYTHONOPTIMIZE"] == "2", name
    assert "PYTHONOPTIMIZE" not in built.service("prefect-migrate").env


def test_a_single_server_in_the_official_image_runs_as_prefect_ships():
    single = plan.build_plan(StackConfig.model_validate({})).service("prefect-server")
    assert "PYTHONOPTIMIZE" not in single.env


def test_server_env_can_turn_the_optimisation_off():
    built = plan.build_plan(ha(env={"PYTHONOPTIMIZE": ""}))
    assert built.service("prefect-services").env["PYTHONOPTIMIZE"] == ""


def test_the_scale_out_image_compiles_its_bytecode_at_the_level_the_processes_run_at():
    text = (ROOT / scaleout.DOCKERFILE_DIR / "Dockerfile").read_text()
    (flags,) = re.findall(r"RUN python (-O+) -m compileall .*purelib", text)
    assert len(flags) - 1 == int(scaleout.OPTIMIZE_ENV["PYTHONOPTIMIZE"])
