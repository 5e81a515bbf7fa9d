"""The rendered Traefik configuration, checked against Traefik v3's published JSON schemas
and for the routing behaviour we rely on. The real Traefik reads it in
tests/test_traefik_binary.py (loopback) and tests/test_live_traefik.py (the whole stack)."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from harness import ROOT, evaluate, stack_file

from components import traefik
from components.config import ProxySettings
from components.routes import Route

SCHEMAS = ROOT / "tests" / "schemas"  # vendored from ../shared/schemas
SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"
PREFECT = Route("/prefect", "prefect-server", 4200)
ROUTES = [PREFECT, Route("/api", "api", 8000, strip_prefix=True),
          Route("/api/v2", "api-v2", 8000),
          Route("/minio", "minio", 9000, strip_prefix=True),
          Route("/minio-console", "minio", 9001, strip_prefix=True, auth=True),
          Route("/flower", "flower", 5555, auth=True), Route("/", "web", 80)]


# Middleware options newer than the vendored schema (SchemaStore, 2026-08-07): the retry
# `status` of Traefik 3.7. The real Traefik 3.7.15 loads them (tests/test_traefik_binary.py).
NEWER_THAN_SCHEMA = {"retry": {"status"}}


def validate(document: dict, schema_file: str) -> None:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    jsonschema.Draft7Validator(schema).validate(without_newer_options(document))


def without_newer_options(document: dict) -> dict:
    middlewares = document.get("http", {}).get("middlewares", {})
    trimmed = {name: {kind: {k: v for k, v in options.items()
                             if k not in NEWER_THAN_SCHEMA.get(kind, set())}
                      for kind, options in middleware.items()}
               for name, middleware in middlewares.items()}
    return {**document, "http": {**document["http"], "middlewares": trimmed}} if middlewares \
        else document


def test_only_the_listed_newer_options_are_left_out_of_schema_validation():
    document = {"http": {"middlewares": {"r": {"retry": {"attempts": 4, "status": ["502"]}},
                                         "s": {"stripPrefix": {"prefixes": ["/a"]}}}}}
    assert without_newer_options(document)["http"]["middlewares"] == {
        "r": {"retry": {"attempts": 4}}, "s": {"stripPrefix": {"prefixes": ["/a"]}}}
    with pytest.raises(jsonschema.ValidationError):  # anything else still fails the schema
        validate({"http": {"middlewares": {"r": {"retry": {"attempts": 4, "timeout": "1s"}}}}},
                 "traefik-v3-file-provider.json")


@pytest.mark.parametrize("tls", ["internal", "acme", "off"])
def test_rendered_static_and_dynamic_config_match_the_traefik_v3_schemas(tls):
    proxy = ProxySettings.model_validate({
        "kind": "traefik", "tls": tls, "domain": "example.org",
        "acme": {"email": "ops@example.org", "staging": True}, "traefik": {"dashboard": True}})
    validate(traefik.static_config(proxy), "traefik-v3.json")
    validate(traefik.dynamic_config(ROUTES, proxy, "admin", "pw"), "traefik-v3-file-provider.json")


def test_schema_validation_catches_a_misspelled_middleware():
    broken = {"http": {"middlewares": {"x": {"stripPrefixes": {"prefixes": ["/a"]}}}}}
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, "traefik-v3-file-provider.json")


def dynamic(**proxy) -> dict:
    settings = ProxySettings.model_validate({"kind": "traefik", "tls": "internal", **proxy})
    return traefik.dynamic_config(ROUTES, settings, "admin", "pw")["http"]


def test_strip_prefix_only_where_asked():
    http = dynamic()
    strips = {name for name, m in http["middlewares"].items() if "stripPrefix" in m}
    assert strips == {"api-api-strip", "minio-minio-strip", "minio-minio-console-strip"}
    assert "api-api-strip" in http["routers"]["api-api"]["middlewares"]
    assert not any("strip" in m for m in http["routers"]["prefect-server-prefect"]["middlewares"])


def test_auth_exactly_where_asked_and_never_on_prefects_own_login():
    routers = dynamic()["routers"]
    assert "auth" not in routers["prefect-server-prefect"]["middlewares"]
    assert "auth" in routers["flower-flower"]["middlewares"]
    assert "auth" in routers["minio-minio-console"]["middlewares"]
    assert "auth" not in routers["minio-minio"]["middlewares"]
    assert "auth" not in routers["api-api"]["middlewares"]


def test_prefixes_match_whole_segments_and_the_fallback_has_lowest_priority():
    routers = dynamic()["routers"]
    assert routers["api-api"]["rule"] == "Path(`/api`) || PathPrefix(`/api/`)"
    assert routers["minio-minio"]["rule"] == "Path(`/minio`) || PathPrefix(`/minio/`)"
    assert routers["web-root"]["priority"] == 1
    assert all(r["priority"] > 1 for n, r in routers.items() if n != "web-root")


def test_a_more_specific_overlapping_prefix_wins():
    routers = dynamic()["routers"]
    assert routers["api-v2-api-v2"]["priority"] > routers["api-api"]["priority"]
    assert routers["minio-minio-console"]["priority"] > routers["minio-minio"]["priority"]


def test_basic_auth_users_hold_a_bcrypt_placeholder_never_a_password():
    users = dynamic()["middlewares"]["auth"]["basicAuth"]["users"]
    assert users == ["admin:${pw|bcrypt}"]


def test_dashboard_is_off_by_default_and_behind_auth_on_its_own_entrypoint():
    assert "dashboard" not in dynamic()["routers"]
    proxy = ProxySettings.model_validate({"kind": "traefik", "traefik": {"dashboard": True}})
    assert traefik.static_config(proxy)["api"] == {"dashboard": True}
    router = dynamic(traefik={"dashboard": True})["routers"]["dashboard"]
    assert router["entryPoints"] == ["dashboard"] and router["middlewares"] == ["auth"]


def test_replicas_retry_a_reset_idempotent_request_but_never_a_post():
    """Seen with the real Traefik: a replica killed while answering resets the connection,
    a 502 that the default retry (only requests never sent) passes to the client."""
    replicated = [Route("/prefect", "prefect-server", 4200, upstreams=("s1", "s2"),
                        health_path="/prefect/api/health")]
    proxy = ProxySettings.model_validate({"kind": "traefik", "tls": "internal"})
    http = traefik.dynamic_config(replicated, proxy, "admin", "pw")["http"]
    retry = http["middlewares"]["prefect-server-prefect-retry"]["retry"]
    assert retry["status"] == ["502"] and not retry.get("retryNonIdempotentMethod")
    assert "prefect-server-prefect-retry" in http["routers"]["prefect-server-prefect"][
        "middlewares"]


def test_acme_routers_name_the_stack_domain_for_their_certificate():
    """Traefik requests certificates only for domains in a Host rule or tls.domains, and our
    rules match paths alone (seen with the real Traefik: "No domain parsed")."""
    proxy = ProxySettings.model_validate({"kind": "traefik", "tls": "acme", "domain": "a.org",
                                          "acme": {"email": "x@a.org"}})
    routers = traefik.dynamic_config(ROUTES, proxy, "admin", "pw")["http"]["routers"]
    assert all(r["tls"] == {"certResolver": "letsencrypt", "domains": [{"main": "a.org"}]}
               for r in routers.values())


def test_acme_resolver_only_in_acme_mode():
    acme = ProxySettings.model_validate({"kind": "traefik", "tls": "acme", "domain": "a.org",
                                         "acme": {"email": "x@a.org"}})
    assert traefik.static_config(acme)["certificatesResolvers"]["letsencrypt"]["acme"][
        "email"] == "x@a.org"
    internal = ProxySettings.model_validate({"kind": "traefik"})
    assert "certificatesResolvers" not in traefik.static_config(internal)


def test_reference_003_traefik_files_uploaded_by_the_program_are_schema_valid():
    config, secrets = stack_file("examples/003-traefik-many-services.yaml")
    ev = evaluate(config, secrets)
    uploads = {u["file"]: u["content"] for u in ev.container("computor-proxy")["uploads"]}
    static = yaml.safe_load(uploads[traefik.STATIC_PATH])
    dynamic_doc = yaml.safe_load(uploads[traefik.DYNAMIC_PATH])
    validate(static, "traefik-v3.json")
    validate(dynamic_doc, "traefik-v3-file-provider.json")
    user = dynamic_doc["http"]["middlewares"]["auth"]["basicAuth"]["users"][0]
    assert user.startswith("admin:$2b$10$")
    assert set(dynamic_doc["http"]["routers"]) >= {"uvicorn-api", "minio-minio",
                                                   "minio-minio-console", "flower-flower"}


@pytest.mark.parametrize("name", ["traefik-v3.json", "traefik-v3-file-provider.json"])
def test_vendored_schema_is_the_shared_one(name):
    if not SHARED_SCHEMAS.is_dir():
        pytest.skip("../shared is not beside this checkout")
    assert (SCHEMAS / name).read_bytes() == (SHARED_SCHEMAS / name).read_bytes()
