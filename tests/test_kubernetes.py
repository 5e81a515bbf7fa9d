"""target.kind kubernetes: the committed example (and prod moved onto a cluster) evaluated on
mocks, every emitted object validated against Kubernetes 1.37's OpenAPI schemas, the same
invariants as the Docker backend, and what has no Kubernetes meaning refused by key."""

from __future__ import annotations

import copy
import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from harness import (
    RANDOM_PASSWORD,
    ROOT,
    evaluate,
    generated_password,
    is_secret,
    plain_strings,
    stack_file,
    started_for,
)

from components.errors import ConfigError
from components.kubernetes.emitted import kubernetes_objects
from components.loader import load

EXAMPLE = "examples/kubernetes/prod.yaml"
KUBERNETES_VERSION = "1.37.0"
PREFECT_UID = 1001


def prod_on_kubernetes() -> tuple[dict[str, Any], dict[str, str]]:
    """Pulumi.prod.yaml with only what Kubernetes refuses taken out, and a target."""
    config, secrets = stack_file("Pulumi.prod.yaml")
    config.pop("logging", None)
    config.pop("monitoring", None)  # Docker-only (kube-prometheus-stack on a cluster)
    config["services"] = [{  # a route behind the stack login, as Flower or Grafana would be
        "name": "flower", "image": "mher/flower:2.0.1", "port": 5555, "user": "65534",
        "healthCheck": {"http": {"path": "/flower/healthcheck"}},
        "route": {"prefix": "/flower", "auth": True}}]
    config["proxy"] = {k: v for k, v in config["proxy"].items() if k not in ("bindAddress", "acme")}
    config["target"] = {"kind": "kubernetes",
                        "kubernetes": {"ingress": {"clusterIssuer": "letsencrypt-prod"}}}
    return config, secrets


@pytest.fixture(scope="module", autouse=True)
def schemas_parsed_once():
    """kubernetes-validate reads and parses its schema files (the large definitions file among
    them) on every call, 20 ms an object: parse each once for this module. What is validated,
    and how, stays the library's."""
    original = kubernetes_validate.utils.schema_contents
    kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(original)
    yield
    kubernetes_validate.utils.schema_contents = original


@pytest.fixture(scope="module", params=["example", "prod"])
def stack(request):
    config, secrets = (stack_file(EXAMPLE) if request.param == "example"
                       else prod_on_kubernetes())
    ev = evaluate(config, secrets, stack=request.param)
    return ev, kubernetes_objects(ev), secrets


def of_kind(objects: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {n: o for n, o in objects.items() if o["kind"] == kind}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def test_every_emitted_object_is_valid_for_the_kubernetes_api(stack):
    _, objects, _ = stack
    assert len(objects) > 20
    for name, obj in objects.items():
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{name}: {err.message} at {list(err.path)}")


def test_a_broken_object_is_rejected_by_the_schema_validation(stack):
    _, objects, _ = stack
    broken = copy.deepcopy(objects["deployment-prefect-server"])
    containers(broken)[0]["livenessProbe"]["httpGet"]["port"] = [4200]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_long_running_workload_has_probes_requests_and_limits(stack):
    _, objects, _ = stack
    workloads = {**of_kind(objects, "Deployment"), **of_kind(objects, "StatefulSet")}
    assert {"deployment-prefect-server", "statefulset-postgres"} <= set(workloads)
    for name, obj in workloads.items():
        for container in containers(obj):
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert container.get(probe), (name, probe)
            resources = container["resources"]
            assert resources["limits"]["memory"] and resources["limits"]["cpu"], name
            assert resources["requests"]["memory"] and resources["requests"]["cpu"], name


def test_prefect_server_is_live_on_health_and_ready_on_ready_under_the_sub_path(stack):
    _, objects, _ = stack
    server = containers(objects["deployment-prefect-server"])[0]
    assert server["livenessProbe"]["httpGet"] == {"path": "/prefect/api/health", "port": 4200}
    assert server["readinessProbe"]["httpGet"] == {"path": "/prefect/api/ready", "port": 4200}
    worker = next(c for n, o in of_kind(objects, "Deployment").items() if "worker-" in n
                  for c in containers(o))
    assert worker["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080}


def test_pods_follow_prefect_helms_security_defaults(stack):
    _, objects, _ = stack
    workloads = {**of_kind(objects, "Deployment"), **of_kind(objects, "StatefulSet"),
                 **of_kind(objects, "Job")}
    for name, obj in workloads.items():
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            env = {e["name"] for e in container["env"]}
            assert security["readOnlyRootFilesystem"] is ("EXTRA_PIP_PACKAGES" not in env), name
    worker = next(o for n, o in of_kind(objects, "Deployment").items() if "worker-" in n)
    pod = worker["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == PREFECT_UID
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/tmp", "/home/prefect"} <= mounts  # writable scratch under a read-only root


def test_no_secret_appears_outside_a_secret(stack):
    ev, _, secrets = stack
    known = set(secrets.values()) | {generated_password(r.name)
                                     for r in ev.of_type(RANDOM_PASSWORD)}
    assert known
    for resource in ev.resources:
        for text in plain_strings(resource.inputs):
            assert not any(secret in text for secret in known), (resource.name, text[:80])
    for urn, outputs in ev.component_outputs.items():
        for text in plain_strings(outputs):
            assert not any(secret in text for secret in known), urn


def test_pods_read_secrets_by_reference_from_the_generated_secret_names(stack):
    _, objects, _ = stack
    secret_names = {o["metadata"]["name"] for o in of_kind(objects, "Secret").values()}
    server = containers(objects["deployment-prefect-server"])[0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in server["env"] if "valueFrom" in e}
    assert {"PREFECT_SERVER_API_AUTH_STRING", "PREFECT_SERVER_DATABASE_CONNECTION_URL"} <= set(refs)
    for name, ref in refs.items():
        assert ref["name"] in secret_names and ref["key"] == name
    holder = next(o for o in of_kind(objects, "Secret").values()
                  if o["metadata"]["name"] == refs["PREFECT_SERVER_API_AUTH_STRING"]["name"])
    assert holder["stringData"]["PREFECT_SERVER_API_AUTH_STRING"].startswith("admin:")


def test_jobs_run_before_what_waits_for_them(stack):
    ev, _, _ = stack
    deps = {r.name: set(r.dependencies) for r in ev.resources}
    assert "statefulset-postgres" in deps["job-db-init"]
    assert "job-db-init" in deps["deployment-prefect-server"]
    pool_job = next(n for n in deps if n.startswith("job-pool-"))
    worker = next(n for n in deps if n.startswith("deployment-worker-"))
    assert {pool_job, "deployment-prefect-server"} <= deps[worker]
    assert "deployment-prefect-server" in deps[pool_job]
    if "job-prefect-migrate" in deps:
        assert "job-prefect-migrate" in deps["deployment-prefect-server"]


def test_postgres_is_a_statefulset_with_a_claim_and_only_data_pods_reach_it(stack):
    _, objects, _ = stack
    postgres = objects["statefulset-postgres"]
    claim = postgres["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert objects["service-postgres"]["spec"]["clusterIP"] == "None"
    labels = postgres["spec"]["template"]["metadata"]["labels"]
    assert labels["prefect-stack/zone"] == "data"
    policy = objects["netpol-data-zone"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"prefect-stack/zone": "data"}}
    assert policy["ingress"] == [{"from": [{"podSelector": {
        "matchLabels": {"prefect-stack/data-access": "true"}}}]}]
    for name, obj in of_kind(objects, "Deployment").items():
        pod_labels = obj["spec"]["template"]["metadata"]["labels"]
        uses_db = any("valueFrom" in e and e["name"] in ("DATABASE_URL",
                                                         "PREFECT_SERVER_DATABASE_CONNECTION_URL")
                      for c in containers(obj) for e in c["env"])
        if uses_db:
            assert pod_labels["prefect-stack/data-access"] == "true", name


def test_ingress_serves_the_proxy_routes_with_prefect_unstripped_and_tls_from_cert_manager(stack):
    ev, objects, _ = stack
    ingresses = of_kind(objects, "Ingress")
    paths = {p["path"]: (o, p) for o in ingresses.values()
             for rule in o["spec"]["rules"] for p in rule["http"]["paths"]}
    prefect, prefect_path = paths["/prefect"]
    assert prefect_path["pathType"] == "Prefix"
    assert prefect_path["backend"]["service"] == {"name": "prefect-server", "port": {"number": 4200}}
    annotations = prefect["metadata"]["annotations"]
    assert "nginx.ingress.kubernetes.io/rewrite-target" not in annotations
    assert "nginx.ingress.kubernetes.io/auth-type" not in annotations  # Prefect's own login
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    api, _ = paths["/api(/|$)(.*)"]
    assert api["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] == "/$2"
    routes = {r.prefix for r in ev.plan.routes}
    assert {p.split("(")[0] for p in paths} == routes


def test_routes_with_auth_use_basic_auth_from_an_htpasswd_secret():
    config, secrets = prod_on_kubernetes()
    objects = kubernetes_objects(evaluate(config, secrets, stack="prod"))
    guarded = [o for o in of_kind(objects, "Ingress").values()
               if o["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/auth-type")]
    assert guarded, "the flower route carries auth"
    secret_name = guarded[0]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-secret"]
    auth = next(o for o in of_kind(objects, "Secret").values()
                if o["metadata"]["name"] == secret_name)
    user, _, digest = auth["stringData"]["auth"].partition(":")
    assert user == "admin" and digest.startswith("$2b$10$")


def test_replicated_workloads_have_a_disruption_budget(stack):
    _, objects, _ = stack
    budgets = {o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
               for o in of_kind(objects, "PodDisruptionBudget").values()}
    replicated = {o["metadata"]["name"] for o in of_kind(objects, "Deployment").values()
                  if o["spec"]["replicas"] > 1}
    assert replicated and budgets == replicated


def test_login_output_is_secret(stack):
    ev, _, _ = stack
    assert is_secret(ev.outputs_of("prefect")["login"])


def test_docker_target_registers_no_kubernetes_object():
    config, secrets = stack_file("Pulumi.prod.yaml")
    ev = evaluate(config, secrets)  # as test_churn evaluates it on this worker: evaluated once
    assert not kubernetes_objects(ev)
    assert ev.containers()


# --- what does not exist on Kubernetes -----------------------------------------------------

def problems_for(change: dict[str, Any]) -> list[tuple[str, str]]:
    config, _ = stack_file(EXAMPLE)
    config.update(change)
    values = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in config.items()}
    with pytest.raises(ConfigError) as err:
        load(values, set())
    return [(p.path, p.message) for p in err.value.problems]


@pytest.mark.parametrize("change, key", [
    ({"server": {"publish": {"hostPort": 4200}}}, "server.publish"),
    ({"services": [{"name": "dolt", "image": "dolthub/dolt-sql-server:1.43.0", "port": 3306,
                    "ports": [{"container": 3306, "host": 3306}],
                    "healthCheck": {"command": ["CMD", "true"]}}]}, "services[0].ports"),
    ({"services": [{"name": "docs", "image": "nginx:1.27.3-alpine", "port": 80,
                    "volumes": [{"hostPath": "/srv/docs", "mountPath": "/usr/share/nginx/html"}],
                    "healthCheck": {"command": ["CMD", "true"]}}]}, "services[0].volumes[0].hostPath"),
    ({"workers": [{"name": "p", "flowCode": {"hostPath": "./flows"}}]}, "workers[0].flowCode"),
    ({"docker": {"host": "ssh://deploy@host"}}, "docker.host"),
    ({"logging": {"maxSize": "20m"}}, "logging"),
    ({"proxy": {"domain": "prefect.example.com", "tls": "acme", "acme": {"email": "a@b.co"},
                "httpPort": 8080}}, "proxy.httpPort"),
    ({"proxy": {"domain": "prefect.example.com", "tls": "acme", "acme": {"email": "a@b.co"}},
      "target": {"kind": "kubernetes"}}, "target.kubernetes.ingress.clusterIssuer"),
    ({"target": {"kind": "kubernetes", "kubernetes": {"ingress": {"clusterIssuer": "x"}}}},
     "target.kubernetes.imageRegistry"),
    ({"proxy": {"domain": "prefect.example.com", "tls": "acme", "acme": {"email": "a@b.co"}}},
     "proxy.acme.email"),
    ({"proxy": {"domain": "prefect.example.com", "tls": "acme", "acme": {"staging": True}}},
     "proxy.acme.staging"),
    ({"services": [{"name": "minio", "image": "minio/minio:RELEASE.2025-01-20T14-49-07Z",
                    "port": 9000, "replicas": 2,
                    "volumes": [{"name": "minio-data", "mountPath": "/data"}],
                    "healthCheck": {"command": ["CMD", "true"]}}]}, "services[0].replicas"),
])
def test_what_does_not_exist_on_kubernetes_is_refused_naming_the_key(change, key):
    found = problems_for(change)
    assert any(path == key and "kubernetes" in message.lower() for path, message in found), found


def test_acme_on_kubernetes_needs_no_email_where_docker_needs_one():
    """cert-manager's ClusterIssuer holds the ACME account; Caddy and Traefik register their
    own, so only a Docker stack is asked for the e-mail."""
    config, _ = stack_file(EXAMPLE)
    assert config["proxy"]["tls"] == "acme" and "acme" not in config["proxy"]
    values = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in config.items()}
    assert load(values, set()).config.target.kind == "kubernetes"
    on_docker = problems_for({"target": {"kind": "docker"}})
    assert ("proxy.acme.email", "tls: acme needs an ACME account e-mail: caddy registers with "
            "Let's Encrypt under it") in on_docker


def test_the_same_keys_are_accepted_on_docker():
    config, _ = stack_file("Pulumi.dev.yaml")
    assert config["server"]["publish"] and config["workers"][0]["flowCode"]
    values = {k: json.dumps(v) for k, v in config.items()}
    assert load(values, set()).config.target.kind == "docker"


# --- checkov ----------------------------------------------------------------------------------

CHECKOV_TEST = "test_checkov_finds_nothing_but_the_justified_skips_and_every_skip_is_needed"


def start_checkov(objects: list[dict[str, Any]], workdir: Path) -> subprocess.Popen[str]:
    """One checkov run (≈5 s CPU, most of it start-up). Offline: no download from its platform,
    and any request it still tries goes to a closed loopback port."""
    import os

    import yaml

    path = workdir / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    # Its own venv (./run-tests makes it): checkov pins packaging<24, pulumi needs >=26.
    checkov_bin = Path(__file__).resolve().parent.parent / ".tools" / "checkov" / "bin" / "checkov"
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "HTTPS_PROXY": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9"}
    return subprocess.Popen([str(checkov_bin), "-f", str(path), "--framework", "kubernetes",
                             "--skip-download", "--compact", "-o", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=workdir, env=env)


def report_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=300)
    report = json.loads(out)
    return report[0] if isinstance(report, list) else report


def findings(report: dict[str, Any], which: str, namespace: str) -> set[tuple[str, str]]:
    """(check id, Kind.name) of the results for objects in `namespace`."""
    found = set()
    for r in report["results"][which]:
        kind, ns, name = r["resource"].split(".", 2)
        if ns == namespace:
            found.add((r["check_id"], f"{kind}.{name}"))
    return found


def in_namespace(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    out = []
    for obj in copy.deepcopy(objects):
        if obj["kind"] != "Namespace":
            obj["metadata"]["namespace"] = namespace
            out.append(obj)
    return out


@pytest.fixture(scope="module", autouse=True)
def checkov_run(request, tmp_path_factory):
    """checkov starts with this module's first test and runs while the others do: the example
    and prod as emitted, and the example again without its skip annotations, in one run (each
    skip must silence a finding that is really there). Not started when its test is not
    selected."""

    def start() -> tuple[list[dict[str, Any]], subprocess.Popen[str]]:
        example = kubernetes_objects(evaluate(*stack_file(EXAMPLE), stack="k8s")).values()
        prod = kubernetes_objects(evaluate(*prod_on_kubernetes(), stack="prod")).values()
        as_emitted = in_namespace([*example], "example") + in_namespace([*prod], "prod")
        stripped = in_namespace([*example], "example-unskipped")
        for obj in stripped:
            annotations = obj["metadata"].get("annotations") or {}
            for key in [k for k in annotations if k.startswith("checkov.io/skip")]:
                del annotations[key]
        return as_emitted, start_checkov(as_emitted + stripped,
                                         tmp_path_factory.mktemp("checkov"))

    yield from started_for(request, CHECKOV_TEST, start)


@pytest.mark.live  # checkov, the real scanner
def test_checkov_finds_nothing_but_the_justified_skips_and_every_skip_is_needed(checkov_run):
    if isinstance(checkov_run, Exception):
        raise checkov_run
    as_emitted, process = checkov_run
    for obj in as_emitted:
        for key, value in (obj["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                assert len(value.split("=", 1)[1]) > 30, value  # a reason, not a bare id
    report = report_of(process)
    assert report["summary"]["parsing_errors"] == 0
    assert findings(report, "failed_checks", "example") == set()
    assert findings(report, "failed_checks", "prod") == set()
    skipped = findings(report, "skipped_checks", "example")
    assert {check for check, _ in skipped} >= {"CKV_K8S_43", "CKV_K8S_15"}
    assert findings(report, "failed_checks", "example-unskipped") == skipped


def test_example_stack_file_is_where_the_readme_says():
    readme = (ROOT / "README.md").read_text()
    assert EXAMPLE in readme


# --- the policy pack's Kubernetes rules -----------------------------------------------------

KUBERNETES_RULES = ["kubernetes-workloads-are-operable", "kubernetes-pods-are-hardened",
                    "kubernetes-secrets-are-referenced", "kubernetes-images-are-pinned"]


@pytest.fixture(scope="module")
def captured_k8s():
    from test_policy import Captured

    ev = evaluate(*stack_file(EXAMPLE), stack="example")  # the `stack` fixture's evaluation
    return [Captured(r.type, r.name, r.plain,
                     list(ev.options[r.name].additional_secret_outputs or []))
            for r in ev.resources if r.name in ev.options]


def server_container(resources) -> dict[str, Any]:
    server = next(r for r in resources if r.name == "deployment-prefect-server")
    return server.props["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("rule", KUBERNETES_RULES)
def test_the_example_passes_every_kubernetes_rule(captured_k8s, rule):
    from test_policy import violations

    assert violations(rule, captured_k8s) == []


@pytest.mark.parametrize("rule, change, expected", [
    ("kubernetes-workloads-are-operable", lambda c: c.pop("readinessProbe"), "a readiness probe"),
    ("kubernetes-workloads-are-operable", lambda c: c["resources"]["limits"].pop("memory"),
     "a memory limit"),
    ("kubernetes-pods-are-hardened",
     lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "escalate"),
    ("kubernetes-pods-are-hardened", lambda c: c["securityContext"].pop("capabilities"),
     "drop ALL"),
    ("kubernetes-pods-are-hardened",
     lambda c: c.setdefault("ports", []).append({"containerPort": 4200, "hostPort": 4200}),
     "host port"),
    ("kubernetes-secrets-are-referenced",
     lambda c: c["env"].append({"name": "PREFECT_SERVER_API_AUTH_STRING", "value": "admin:pw"}),
     "PREFECT_SERVER_API_AUTH_STRING"),
    ("kubernetes-images-are-pinned", lambda c: c.update(image="prefecthq/prefect:3-latest"),
     "floating tag"),
])
def test_a_violating_kubernetes_workload_is_reported(captured_k8s, rule, change, expected):
    from test_policy import violations

    bad = copy.deepcopy(captured_k8s)
    change(server_container(bad))
    found = violations(rule, bad)
    assert len(found) == 1 and expected in found[0], found
    assert "deployment-prefect-server" in found[0]


def test_render_shows_the_kubernetes_objects_with_secrets_redacted():
    from components.render import render, resolve
    from components.yamlio import load as load_yaml

    text = render(resolve(str(ROOT / EXAMPLE), ROOT), ROOT)
    objects = load_yaml(text)["kubernetes"]
    server = objects["deployment-prefect-server"]
    assert server["kind"] == "Deployment" and server["spec"]["replicas"] == 2
    env = next(o for n, o in objects.items() if n == "prefect-server-env")["stringData"]
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == "admin:<secret:basicAuthPassword>"


def test_a_failed_job_runs_again_on_the_next_up_and_is_awaited_as_long_as_it_may_run(stack):
    ev, objects, _ = stack
    from components.kubernetes.manifests import JOB_DEADLINE_SECONDS

    jobs = of_kind(objects, "Job")
    assert jobs
    for name, job in jobs.items():
        assert job["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true", name
        assert job["spec"]["activeDeadlineSeconds"] == JOB_DEADLINE_SECONDS
        timeouts = ev.options[name].custom_timeouts
        assert timeouts is not None and timeouts.create == f"{JOB_DEADLINE_SECONDS}s", name


def test_the_built_scale_out_image_is_pulled_from_the_registry_and_runs_locked_down(stack):
    ev, objects, _ = stack
    builds = {b.tag for b in ev.plan.builds}
    if not builds:
        pytest.skip("this stack builds no image")
    server = objects["deployment-prefect-server"]["spec"]["template"]["spec"]
    assert server["containers"][0]["image"] == f"registry.example.com/platform/{builds.pop()}"
    assert server["securityContext"]["runAsUser"] == PREFECT_UID
    assert server["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


# --- the backend-neutral half of the plan --------------------------------------------------

def test_docker_health_checks_become_command_probes_and_http_checks_http_probes():
    from components.neutral import probe_from_healthcheck
    from components.spec import HealthCheck

    shell = probe_from_healthcheck(HealthCheck(("CMD-SHELL", "redis-cli ping | grep -q PONG")))
    assert shell is not None and shell.command == ("sh", "-c", "redis-cli ping | grep -q PONG")
    argv = probe_from_healthcheck(HealthCheck(("CMD", "pg_isready", "-U", "postgres"),
                                              interval_s=5, retries=10))
    assert argv is not None and argv.command == ("pg_isready", "-U", "postgres")
    assert (argv.interval_s, argv.retries) == (5, 10)
    assert probe_from_healthcheck(HealthCheck(("NONE",))) is None


def test_the_plan_says_which_zone_each_workload_sits_in_and_what_it_may_reach():
    config, _ = stack_file(EXAMPLE)
    plan = load({k: json.dumps(v) for k, v in config.items()}, set()).plan
    assert plan.service("postgres").zone == "data" and plan.service("redis").zone == "data"
    assert plan.service("prefect-server").zone == "app"
    assert plan.service("prefect-server").reaches_data
    assert not plan.service("pool-k8s-pool").reaches_data
    assert plan.exposed_ports("api") == (8000,)
    server = plan.service("prefect-server").probe
    assert server is not None and (server.http_path, server.ready_path) == (
        "/prefect/api/health", "/prefect/api/ready")


@pytest.mark.parametrize("config, secrets, absent", [
    ({"database": {"kind": "external"}, "proxy": {"kind": "caddy", "tls": "off"}},
     {"externalDatabaseUrl": "postgresql+asyncpg://u:p@db.example.com:5432/prefect"},
     "StatefulSet"),
    ({"proxy": {"kind": "none"}, "server": {"publicUrl": "http://localhost:4200"}}, {},
     "Ingress"),
], ids=["external-database", "no-proxy"])
def test_smaller_kubernetes_stacks_validate_and_leave_out_what_they_do_not_use(
        config, secrets, absent):
    objects = kubernetes_objects(evaluate({"target": {"kind": "kubernetes"}, **config}, secrets,
                                          stack="small"))
    for obj in objects.values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    kinds = {o["kind"] for o in objects.values()}
    assert absent not in kinds and "Deployment" in kinds
