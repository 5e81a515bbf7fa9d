"""`python -m components.importer`: each compose project in tests/compose is imported, loaded
by the program, evaluated on Pulumi mocks with the secrets from the generated script, and
compared with its compose file: services, routes, published ports, env, secrets, report."""

from __future__ import annotations

import json
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, evaluate, is_secret, plain_strings, unwrap

from components import importer
from components.compose import load_project
from components.dryrun import emitted_containers, stack_file
from components.loader import load

CORPUS = ROOT / "tests" / "compose"


@dataclass(frozen=True)
class Case:
    """A compose project and what importing it must give. Services and env are compared with
    the compose file itself; only what the stack deliberately changes is listed here."""

    name: str
    compose: str
    env_files: tuple[str, ...] = ()
    services: dict[str, str] = field(default_factory=dict)  # compose name -> stack name
    workers: dict[str, str] = field(default_factory=dict)  # compose name -> pool
    routes: frozenset[tuple[str, str, int, bool, bool]] = frozenset()  # prefix, svc, port, strip, auth
    changed_env: dict[tuple[str, str], str | None] = field(default_factory=dict)  # None: absent
    unmapped: frozenset[str] = frozenset()  # compose paths the report must list
    published: frozenset[tuple[str, int, int]] = frozenset()  # (stack name, host, container)


CASES = [
    Case("prefect-docs", "prefect-docs/compose.yml",
         workers={"prefect-worker": "local-pool"},
         published=frozenset({("prefect-server", 4200, 4200)})),
    Case("000-cogni", "000-cogni/deploy/docker-compose.yml",
         services={"dolt-db": "dolt-db", "api": "api"},
         workers={"prefect-worker": "cogni-pool"},
         routes=frozenset({("/prefect", "prefect-server", 4200, False, False),
                           ("/api", "api", 8000, True, False), ("/", "api", 8000, False, False)}),
         unmapped=frozenset({"services.api.build"}),
         published=frozenset({("prefect-server", 4200, 4200), ("api", 8000, 8000),
                              ("proxy", 80, 80), ("proxy", 443, 443)})),
    Case("001-bluesky", "001-bluesky/docker-compose.prefect.yml",
         services={"prometheus": "prometheus", "grafana": "grafana",
                   "alertmanager": "alertmanager"},
         workers={"prefect-agent": "default"},
         published=frozenset({("prefect-server", 4200, 4200), ("grafana", 3000, 3000),
                              ("prometheus", 9090, 9090), ("alertmanager", 9093, 9093)})),
    Case("002-biocirv", "002-biocirv/resources/docker/docker-compose.yml",
         services={"setup-db": "setup-db"},
         workers={"prefect-worker": "biocirv-pool"},
         changed_env={("setup-db", "DATABASE_URL"):
                      "postgresql+psycopg://biocirv:pg-test-Secret-41@postgres:5432/biocirv_db",
                      ("setup-db", "POSTGRES_HOST"): "postgres",
                      ("setup-db", "PREFECT_API_DATABASE_CONNECTION_URL"):
                      "postgresql+asyncpg://biocirv:pg-test-Secret-41@postgres:5432/prefect_db",
                      ("prefect-worker", "DATABASE_URL"):
                      "postgresql+psycopg://biocirv:pg-test-Secret-41@postgres:5432/biocirv_db",
                      ("prefect-worker", "POSTGRES_HOST"): "postgres"},
         unmapped=frozenset({"services.prefect-worker.build", "services.setup-db.build",
                             "services.db.volumes[1]"}),
         published=frozenset({("prefect-server", 4200, 4200)})),
    Case("003-computor-dev", "003-computor-dev/docker-compose-dev.yaml", (".env.dev",),
         services={"celery-system-worker": "celery-system-worker", "flower": "flower",
                   "minio": "minio"},
         routes=frozenset({("/prefect", "prefect-server", 4200, False, False),
                           ("/flower", "flower", 5555, False, False),
                           ("/minio", "minio", 9000, True, False),
                           ("/minio-console", "minio", 9001, True, False)}),
         changed_env={("celery-system-worker", "DATABASE_URL"):
                      "postgresql+psycopg://computor:dev-pg-pass-19@postgres:5432/computor"},
         unmapped=frozenset({"services.keycloak", "services.prefect", "services.postgres.command",
                             "services.celery-system-worker.build", "services.traefik.command"}),
         published=frozenset({("minio", 9000, 9000), ("minio", 9001, 9001),
                              ("proxy", 8080, 80)})),
    Case("003-computor-prod", "003-computor-prod/docker-compose-prod.yaml", (".env.prod",),
         services={"uvicorn": "uvicorn", "nginx": "nginx", "flower": "flower", "minio": "minio",
                   "celery-system-worker": "celery-system-worker"},
         workers={"system-agent": "system-queue"},
         routes=frozenset({("/prefect", "prefect-server", 4200, False, False),
                           ("/api", "uvicorn", 8000, False, False),
                           ("/docs", "nginx", 80, True, False),
                           ("/flower", "flower", 5555, False, False),
                           ("/minio", "minio", 9000, True, False),
                           ("/minio-console", "minio", 9001, True, False)}),
         unmapped=frozenset({"services.system-agent.build"}),
         published=frozenset({("prefect-server", 4200, 4200), ("nginx", 8081, 80),
                              ("flower", 5555, 5555), ("proxy", 8080, 80)})),
    Case("004-captionacc", "004-captionacc/compose.yaml",
         services={"orchestrator": "orchestrator"},
         changed_env={("orchestrator", "PREFECT_API_URL"): "http://prefect-server:4200/api"},
         published=frozenset({("prefect-server", 4200, 4200), ("orchestrator", 8080, 8080)})),
    Case("kitchen-sink", "kitchen-sink/compose.yaml",
         services={"minio": "minio", "webapp": "webapp"},
         workers={"worker": "etl"},
         routes=frozenset({("/prefect", "prefect-server", 4300, False, False),
                           ("/minio-console", "minio", 9001, True, True),
                           ("/app", "webapp", 8000, False, False)}),
         changed_env={("worker", "APP_DATABASE_URL"):
                      "postgresql://app:app-db-pw-4@postgres:5432/app"},
         unmapped=frozenset({"services.frontend", "services.debug-shell", "services.minio-init",
                             "services.minio-init.command", "services.minio-init.entrypoint",
                             "services.webapp.depends_on.minio-init",
                             "services.webapp.extra_hosts",
                             "services.minio.privileged", "services.worker.cap_add",
                             "services.worker.command", "services.proxy.ports[2]"}),
         published=frozenset({("proxy", 443, 443), ("proxy", 80, 80)})),
]


@dataclass
class Result:
    case: Case
    out: Path
    rc: int
    stdout: str
    stderr: str
    config: dict[str, Any]
    secrets: dict[str, str]
    compose: dict[str, Any]
    project: Any


def read_script(path: Path) -> dict[str, str]:
    """KEY -> VALUE from the `pulumi config set --secret --stack S KEY -- VALUE` commands,
    read with a shell's quoting rules (values may span lines)."""
    words = shlex.split(path.read_text(), comments=True)
    secrets = {}
    for i, word in enumerate(words):
        if word == "pulumi" and words[i + 1:i + 6] == ["config", "set", "--secret", "--stack",
                                                         "imported"]:
            assert words[i + 7] == "--"
            secrets[words[i + 6]] = words[i + 8]
    return secrets


def run_import(case: Case, out: Path, capsys: pytest.CaptureFixture[str]) -> Result:
    compose = CORPUS / case.compose
    env_args = [a for f in case.env_files for a in ("--env-file", str(compose.parent / f))]
    rc = importer.main([str(compose), *env_args, "--stack", "imported", "--out", str(out)])
    captured = capsys.readouterr()
    config, secure = stack_file(out / "Pulumi.imported.yaml")
    assert not secure
    project, _ = load_project(compose, [compose.parent / f for f in case.env_files])
    return Result(case, out, rc, captured.out, captured.err, config,
                  read_script(out / "set-secrets-imported.sh"), project.doc, project)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    capsys = _ModuleCapture()
    found = {}
    for case in CASES:
        found[case.name] = run_import(case, tmp_path_factory.mktemp(case.name), capsys)
    capsys.close()
    return found


class _ModuleCapture:
    """capsys for a module-scoped fixture: redirect stdout/stderr around each import."""

    def __init__(self) -> None:
        import io
        import sys
        self._sys = sys
        self._old = (sys.stdout, sys.stderr)
        self._out, self._err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = self._out, self._err

    def readouterr(self) -> Any:
        from types import SimpleNamespace

        out, err = self._out.getvalue(), self._err.getvalue()
        self._out.seek(0)
        self._out.truncate()
        self._err.seek(0)
        self._err.truncate()
        return SimpleNamespace(out=out, err=err)

    def close(self) -> None:
        self._sys.stdout, self._sys.stderr = self._old


def test_the_corpus_has_the_prefect_docs_stack_and_every_reference():
    names = {c.name for c in CASES}
    assert len(CASES) >= 8 and "prefect-docs" in names
    for prefix in ("000", "001", "002", "003", "004"):
        assert any(n.startswith(prefix) for n in names)
    assert {p.name for p in CORPUS.iterdir()} == names


def prefix_of(result: Result) -> str:
    return result.config["network"]["namePrefix"]


def containers_of(ev: Any, result: Result, stack_name: str) -> list[str]:
    base = f"{prefix_of(result)}-{stack_name}"
    return sorted(n for n in ev.containers() if n == base or n.rsplit("-", 1)[0] == base
                  and n.rsplit("-", 1)[1].isdigit())


def compose_env(result: Result, compose_name: str) -> dict[str, str]:
    """A compose service's environment as compose would pass it (env_file, then environment)."""
    from components.compose import parse_env_file

    svc = result.compose["services"][compose_name]
    env: dict[str, str] = {}
    files = svc.get("env_file") or []
    for item in [files] if isinstance(files, str | dict) else files:
        path = result.project.directory / (item["path"] if isinstance(item, dict) else item)
        if path.is_file():
            env.update({k: v.value for k, v in parse_env_file(path, result.project.env).items()})
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        raw = dict((e.split("=", 1) + [result.project.env.get(e, "")])[:2] for e in raw)
    env.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()})
    return env


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_import_writes_a_stack_the_program_loads_and_deploys_like_the_compose_file(
        case: Case, results: dict[str, Result]):
    result = results[case.name]
    assert result.rc == 0, result.stderr
    ev = evaluate(result.config, result.secrets, stack="imported")
    # Services: same image, same published ports, same environment (secrets resolved).
    for compose_name, stack_name in case.services.items():
        names = containers_of(ev, result, stack_name)
        assert names, f"{stack_name} not deployed"
        svc = result.compose["services"][compose_name]
        for name in names:
            container = next(c for c in emitted_containers(ev) if c.name == name)
            assert container.image == svc["image"]
            env = ev.env(name)
            for key, value in compose_env(result, compose_name).items():
                expected = case.changed_env.get((compose_name, key), value)
                if expected is None:
                    assert key not in env
                else:
                    assert env.get(key) == expected, (name, key)
    # Workers: one pool per compose worker, its env (but the Prefect client settings).
    for compose_name, pool in case.workers.items():
        assert pool in [w["name"] for w in result.config["workers"]]
        names = containers_of(ev, result, f"worker-{pool}")
        assert names, f"no worker for pool {pool}"
        env = ev.env(names[0])
        for key, value in compose_env(result, compose_name).items():
            if key.startswith("PREFECT_") or key == "EXTRA_PIP_PACKAGES":
                continue
            expected = case.changed_env.get((compose_name, key), value)
            assert env.get(key) == expected, (compose_name, key)
    # Published ports, exactly.
    published = {(n.removeprefix(f"{prefix_of(result)}-"), int(p["external"]), int(p["internal"]))
                 for n, c in ev.containers().items() for p in c.get("ports") or []}
    assert published == case.published


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_routes_are_the_compose_proxy_routes(case: Case, results: dict[str, Result]):
    result = results[case.name]
    values = {k: json.dumps(v) for k, v in result.config.items()} | result.secrets
    loaded = load(values, set(result.secrets))
    routes = {(r.prefix, r.service, r.port, r.strip_prefix, r.auth) for r in loaded.plan.routes}
    assert routes == case.routes


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_secrets_live_only_in_the_script_and_reach_containers_as_secrets(
        case: Case, results: dict[str, Result]):
    result = results[case.name]
    stack_text = (result.out / "Pulumi.imported.yaml").read_text()
    script = result.out / "set-secrets-imported.sh"
    assert stat.S_IMODE(script.stat().st_mode) == 0o600
    report = (result.out / "import-report-imported.txt").read_text()
    ev = evaluate(result.config, result.secrets, stack="imported")
    in_clear = {s for r in ev.resources for s in plain_strings(r.inputs)}
    scalars = set(_strings(result.config))
    for key, value in result.secrets.items():
        value = value.strip()
        if len(value) < 8:  # "prefect", "admin": also names of users and databases
            continue
        assert value not in scalars, key
        for shown in (stack_text, result.stdout, result.stderr, report, *in_clear):
            assert value not in shown, key


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_every_secret_of_the_compose_files_is_in_a_script():
    """Values the write-ups call credentials, each found by the detector."""
    expected = {
        "000-cogni": {"dolt-root-pw-3f9a", "mcp-write-token-77c1",
                      "sk-test0000000000000000000000", "cogni-key-5e2b"},
        "001-bluesky": {"admin"},  # Grafana's compose default admin password
        "002-biocirv": {"pg-test-Secret-41"},
        "003-computor-dev": {"dev-pg-pass-19", "dev-redis-pass-7", "dev-minio-pass-3",
                             "admin:flower123"},
        "003-computor-prod": {"prod-pg-pass-88", "prod-redis-pass-52", "prod-prefect-db-pass-4",
                              "glpat-test0000000000000000000", "admin:prod-flower-pass-6",
                              "prod-token-signing-secret-0c", "minio-default-pass"},
        "004-captionacc": {"pnu_test00000000000000000000000000000000"},
        "prefect-docs": {"prefect"},
    }
    return_values = {}
    for case in CASES:
        if case.name in expected:
            imported = importer.import_compose(
                CORPUS / case.compose, [(CORPUS / case.compose).parent / f for f in case.env_files],
                "s")
            return_values[case.name] = set(imported.secrets.values())
    for name, values in expected.items():
        assert values <= return_values[name], name


@pytest.mark.parametrize("case", [c for c in CASES if c.unmapped], ids=lambda c: c.name)
def test_report_lists_what_was_not_imported_by_compose_path(case: Case,
                                                            results: dict[str, Result]):
    result = results[case.name]
    report = (result.out / "import-report-imported.txt").read_text()
    listed = {line.split(":", 1)[0].removeprefix("  - ") for line in
              report.split("Translated differently")[0].splitlines() if line.startswith("  - ")}
    assert case.unmapped <= listed
    assert report in result.stderr


# --- focused checks on single references ---------------------------------------------------

def test_000_caddy_routes_prefect_unstripped_api_stripped_and_the_rest_to_the_api(results):
    config = results["000-cogni"].config
    assert config["server"]["basePath"] == "/prefect"
    assert config["proxy"]["kind"] == "caddy" and config["proxy"]["tls"] == "internal"
    api = next(s for s in config["services"] if s["name"] == "api")
    assert api["routes"] == [{"prefix": "/api", "stripPrefix": True}, {"prefix": "/"}]
    worker = config["workers"][0]
    assert worker["flowCode"]["mountPath"] == "/workspace"
    assert Path(worker["flowCode"]["hostPath"]) == (CORPUS / "000-cogni").resolve()


def test_001_alertmanager_config_is_uploaded_with_the_webhook_as_a_secret(results):
    result = results["001-bluesky"]
    alert = next(s for s in result.config["services"] if s["name"] == "alertmanager")
    (upload,) = alert["files"]
    assert "${slackApiUrl}" in upload["content"] and "hooks.slack.com" not in upload["content"]
    ev = evaluate(result.config, result.secrets, stack="imported")
    uploads = ev.raw_container(f"{prefix_of(result)}-alertmanager")["uploads"]
    assert is_secret(uploads) or is_secret(uploads[0]["content"])
    source = (CORPUS / "001-bluesky/monitoring/alertmanager.yml").read_text()
    assert unwrap(uploads)[0]["content"] == source
    assert result.config["workers"][0]["concurrencyLimit"] == 5
    assert result.config["proxy"] == {"kind": "none"}
    assert result.config["server"]["publicUrl"] == "http://localhost:4200"


def test_002_one_postgres_hosts_both_databases_and_alembic_runs_before_the_worker(results):
    config = results["002-biocirv"].config
    assert config["database"]["kind"] == "postgres"
    assert config["database"]["prefectDatabase"] == "prefect_db"
    assert {(d["name"], d["owner"]) for d in config["database"]["postgres"]["databases"]} == {
        ("biocirv_db", "biocirv"), ("prefect_db", "biocirv")}
    assert config["setupJobs"][0]["command"] == ["alembic", "upgrade", "head"]
    assert config["workers"][0]["dependsOn"] == ["setup-db"]
    upload = config["workers"][0]["files"][0]
    assert upload["path"] == "/app/credentials.json" and upload["content"] == "${credentials}"


def test_003_prod_merges_both_postgres_and_scales_celery_from_the_env_file(results):
    config = results["003-computor-prod"].config
    assert config["database"]["prefectDatabase"] == "prefect"
    assert {d["name"] for d in config["database"]["postgres"]["databases"]} == {"computor",
                                                                                "prefect"}
    celery = next(s for s in config["services"] if s["name"] == "celery-system-worker")
    assert celery["replicas"] == 2
    assert celery["healthCheck"]["command"][1].endswith("celery@$HOSTNAME")  # $$ -> $
    assert celery["redis"] == {"env": "CELERY_BROKER_URL", "db": 0}
    assert config["redis"]["passwordSecret"] == "redisPassword"


def test_004_external_database_url_is_a_secret_and_the_ui_gets_the_public_url(results):
    result = results["004-captionacc"]
    database = result.config["database"]
    assert database["kind"] == "external"
    key = database["external"]["urlSecret"]
    assert result.secrets[key].startswith("postgresql+asyncpg://postgres:supa-test-pass-1@")
    assert result.config["server"]["publicUrl"] == "https://prefect.captionacc.example"
    assert result.config["server"]["resources"] == {"memoryMb": 256, "cpus": 1.0}


def test_prefect_docs_stack_folds_the_services_container_into_one_server(results):
    config = results["prefect-docs"].config
    assert config["database"]["postgres"]["databases"] == [{"name": "prefect", "owner": "prefect"}]
    assert "replicas" not in config["server"]
    assert config["redis"]["enabled"] is True
    report = results["prefect-docs"].stderr
    assert "services.prefect-services: Prefect's background services run inside" in report


def test_kitchen_sink_auth_acme_job_secrets_and_interpolation(results):
    result = results["kitchen-sink"]
    config = result.config
    assert config["server"]["basicAuth"]["enabled"] is True
    assert result.secrets["basicAuthPassword"] == "login pass with spaces & $dollar"
    assert config["proxy"]["tls"] == "acme" and config["proxy"]["acme"] == {
        "email": "ops@example.org"}
    assert config["proxy"]["domain"] == "prefect.example.org"  # {$SITE_DOMAIN} via caddy adapt
    worker = config["workers"][0]
    assert worker["env"] == {"PLAIN_SETTING": "unset-default", "EMPTY_SETTING": "",
                             "EMPTY_OR_DEFAULT": "used", "PRICE": "$5"}
    assert worker["replicas"] == 3 and worker["queryIntervalSeconds"] == 2
    minio = next(s for s in config["services"] if s["name"] == "minio")
    test = minio["healthCheck"]["command"]
    assert test[0] == "CMD-SHELL" and '"${MINIO_ROOT_PASSWORD}"' in test[1]
    assert minio["healthCheck"]["intervalSeconds"] == 90
    app = next(s for s in config["services"] if s["name"] == "webapp")
    assert {f["path"] for f in app["files"]} == {"/run/secrets/api_token", "/etc/app/settings.ini"}
    assert app["secretEnv"] == {"SESSION_SECRET": "sessionSecret"}
    assert app["dependsOn"] == ["prefect-server"]
    assert config["database"]["postgres"].get("superuserPasswordSecret") is None
    assert result.secrets["postgresPassword"] == "pg-super-pw-9"


def test_profiles_include_services_when_asked(tmp_path: Path):
    imported = importer.import_compose(CORPUS / "kitchen-sink/compose.yaml", [], "s", ["debug"])
    assert "debug-shell" in [s["name"] for s in imported.config["services"]]
    assert imported.loads


def test_a_stack_the_program_refuses_is_written_and_reported_with_the_loaders_messages(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  prefect:\n    image: prefecthq/prefect:2.20.3-python3.11\n"
                       "    command: prefect server start\n    ports: ['4200:4200']\n")
    rc = importer.main([str(compose), "--stack", "old", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and (tmp_path / "Pulumi.old.yaml").is_file()
    assert "prefect-stack:server.image: image `prefecthq/prefect:2.20.3-python3.11` is Prefect 2" \
        in err


def test_invalid_compose_is_refused_by_the_compose_spec_schema(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]):
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  web:\n    image: nginx:1.27.3\n    prots: ['80:80']\n"
                       "    ports: {a: b}\n")
    rc = importer.main([str(compose), "--stack", "bad", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "Pulumi.bad.yaml").exists()
    assert "compose-spec schema" in err and "services.web" in err and "prots" in err


def test_missing_required_variable_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    rc = importer.main([str(CORPUS / "003-computor-dev/docker-compose-dev.yaml"), "--stack", "x",
                        "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "required variable POSTGRES_PASSWORD is missing: set POSTGRES_PASSWORD in .env.dev" \
        in err


def test_odd_compose_input_is_reported_by_path_never_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "other.yml").write_text("services: {}\n")
    compose = tmp_path / "compose.yml"
    compose.write_text("""\
include: [other.yml]
services:
  web: {build: .}
  p:
    image: prefecthq/prefect:latest
    command: prefect server start --port abc
    environment: ["ONLY_KEY"]
    healthcheck: {disable: true}
  w:
    image: prefecthq/prefect:3.8.8-python3.12
    command: prefect worker start --limit many
    depends_on: [p, web]
    ports: [{target: 80, published: 8080}]
    volumes: [{type: tmpfs, target: /tmp}]
  s:
    image: nginx:1.27.3
    labels: {team: web}
    healthcheck: {test: ["CMD", "true"], retries: abc, interval: 10x}
    deploy: {placement: {constraints: []}, resources: {reservations: {memory: 10m}}}
  r:
    image: redis:7
    command: ["redis-server", "--maxmemory", "1gb"]
""")
    rc = importer.main([str(compose), "--stack", "odd", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc == 1 and "prefect-stack:server.publish: proxy.kind: none" in err  # not published
    for path in ("include", "services.web", "services.p.environment[0]", "services.w.ports",
                 "services.w.volumes[0]", "services.w.depends_on.web", "services.s.labels",
                 "services.s.healthcheck.retries", "services.s.healthcheck.interval",
                 "services.s.deploy.placement", "services.s.deploy.resources.reservations",
                 "services.r.command"):
        assert f"  - {path}: " in err.split("Translated differently")[0], path
    config, _ = stack_file(tmp_path / "Pulumi.odd.yaml")
    assert config["server"]["image"] == importer.DEFAULT_PREFECT_IMAGE
    assert "concurrencyLimit" not in config["workers"][0]
