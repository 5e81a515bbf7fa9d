"""The importer's pieces: compose interpolation and env files, secret detection, compose
syntax (ports, volumes, durations), Caddyfile routes through the real `caddy adapt`, Traefik
labels, and file templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import secretscan
from components.compose import ComposeError, Substitution, interpolate, load_project, parse_env_file
from components.composeparts import (
    Port,
    UnreadableError,
    health_test,
    image_repo,
    megabytes,
    parse_port,
    parse_volume,
    seconds,
    service_name,
)
from components.importer import Imported, Report, file_template, secrets_script
from components.proxyimport import ProxyRoute, adapt_caddyfile, caddy_import, traefik_import

# --- interpolation ------------------------------------------------------------------------

ENV = {"SET": "value", "EMPTY": "", "PW": "s3cret"}


@pytest.mark.parametrize(("template", "expected"), [
    ("${SET}", "value"),
    ("$SET/x", "value/x"),
    ("${UNSET}", ""),
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${UNSET-dflt}", "dflt"),
    ("${SET:-dflt}", "value"),
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("$$SET and $${SET}", "$SET and ${SET}"),
    ("${UNSET:-${SET}-x}", "value-x"),
    ("price $5", "price $5"),
    ("a$", "a$"),
])
def test_interpolation_follows_compose(template: str, expected: str):
    assert interpolate(template, ENV).value == expected


def test_required_variable_missing_is_an_error_with_its_message():
    with pytest.raises(ComposeError, match=r"x\.y: required variable UNSET is missing: say why"):
        interpolate("${UNSET:?say why}", ENV, "x.y")
    with pytest.raises(ComposeError, match="required variable EMPTY"):
        interpolate("${EMPTY:?}", ENV)
    assert interpolate("${EMPTY?}", ENV).value == ""


def test_interpolation_remembers_which_variables_and_defaults_went_in():
    text = interpolate("${USER:-admin}:${PW}", ENV)
    assert text.value == "admin:s3cret"
    assert text.subs == (Substitution("USER", "admin", defaulted=True), Substitution("PW", "s3cret"))


def test_unterminated_and_invalid_references_are_errors():
    for bad in ("${SET", "${1X}", "${SET!x}"):
        with pytest.raises(ComposeError):
            interpolate(bad, ENV)


def test_env_file_quotes_comments_export_and_references(tmp_path: Path):
    env = tmp_path / ".env"
    env.write_text("# comment\nexport A=1\nB='lit ${A} # not a comment'\nC=\"x\\ny ${A}\"\n"
                   "D=plain # trailing comment\nE=${A}-${OUTSIDE:-o}\nF=\"multi\nline\"\n"
                   "G=\n")
    values = {k: v.value for k, v in parse_env_file(env, {"OUTSIDE": "out"}).items()}
    assert values == {"A": "1", "B": "lit ${A} # not a comment", "C": "x\ny 1", "D": "plain",
                      "E": "1-out", "F": "multi\nline", "G": ""}


def test_env_file_rejects_lines_that_are_not_assignments(tmp_path: Path):
    env = tmp_path / ".env"
    env.write_text("not an assignment\n")
    with pytest.raises(ComposeError, match="not a KEY=VALUE line"):
        parse_env_file(env)


def test_project_reads_dot_env_by_default_and_env_files_when_given(tmp_path: Path):
    (tmp_path / ".env").write_text("TAG=1.0.0\n")
    (tmp_path / "other.env").write_text("TAG=2.0.0\n")
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  a:\n    image: nginx:${TAG}\n    profiles: [extra]\n"
                       "  b:\n    image: nginx:${TAG}\n")
    project, skipped = load_project(compose, [])
    assert project.doc["services"]["b"]["image"] == "nginx:1.0.0" and skipped == ["a"]
    project, skipped = load_project(compose, [tmp_path / "other.env"], ["extra"])
    assert project.doc["services"]["a"]["image"] == "nginx:2.0.0" and skipped == []


def test_schema_errors_name_the_path_but_never_the_value(tmp_path: Path):
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  a:\n    image: nginx:1\n    ports: 'hunter2-secret'\n")
    with pytest.raises(ComposeError) as err:
        load_project(compose, [])
    assert "services.a.ports" in str(err.value) and "hunter2" not in str(err.value)


# --- secrets ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [
    ("POSTGRES_PASSWORD", "prefect"),
    ("OPENAI_API_KEY", "x"),
    ("GITLAB_TOKEN", "abc"),
    ("FLOWER_BASIC_AUTH", "admin:flower123"),
    ("PREFECT_SERVER_API_AUTH_STRING", "admin:pw"),
    ("DOLTHUB_MCP_ACCESS_WRITE", "write"),
    ("SLACK_WEBHOOK", "x"),
    ("SENTRY_DSN", "https://k@sentry.io/1"),
    ("DATABASE_URL", "postgresql://u:pw@db:5432/app"),
    ("ANYTHING", "pnu_abcdefghijklmnopqrstuvwxyz012345"),
    ("ANYTHING", "https://hooks.slack.com/services/T0/B0/xyz"),
    ("ANYTHING", "Zx81bQ9kLm3Np7Rt2Vw5Yz0Ac4Df6Gh"),
])
def test_secret_detection_flags_credentials(name: str, value: str):
    assert secretscan.is_secret(name, value)


@pytest.mark.parametrize(("name", "value"), [
    ("POSTGRES_USER", "prefect"),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/app/credentials.json"),
    ("POSTGRES_PASSWORD_FILE", "/run/secrets/pg"),
    ("AUTH_ENABLED", "true"),
    ("TOKEN_TTL", "3600"),
    ("REDIS_HOST", "redis"),
    ("SUPABASE_URL", "https://captionacc.supabase.co"),
    ("PREFECT_API_URL", "http://prefect-server:4200/api"),
    ("MINIO_ROOT_USER", "admin"),
    ("API_KEY", ""),
    ("FLOWER_URL_PREFIX", "/flower"),
])
def test_secret_detection_leaves_plain_settings(name: str, value: str):
    assert not secretscan.is_secret(name, value)


def test_a_value_built_from_a_secret_variable_is_secret_whatever_its_name():
    subs = interpolate("${FLOWER_USER:-admin}:${FLOWER_PASSWORD:-flower123}", {}).subs
    assert secretscan.is_secret("FLOWER_OPTS", "admin:flower123", subs)
    assert not secretscan.is_secret("FLOWER_OPTS", "admin", interpolate("${FLOWER_USER:-admin}",
                                                                       {}).subs)


def test_secrets_in_config_files_are_found_by_assignment_and_by_shape():
    content = ("global:\n  slack_api_url: https://hooks.slack.com/services/A/B/C\n"
               "[db]\npassword = 'pw-123'\nuser = app\nsmtp_auth_password: \"mail-pw\"\n")
    found = dict(secretscan.file_secrets(content))
    assert found == {"slack_api_url": "https://hooks.slack.com/services/A/B/C",
                     "password": "pw-123", "smtp_auth_password": "mail-pw"}
    assert secretscan.whole_file_is_secret("/app/credentials.json", "{}")
    assert secretscan.whole_file_is_secret("/x/cfg", '{"private_key": "-----BEGIN ..."}')
    assert not secretscan.whole_file_is_secret("/etc/prometheus/prometheus.yml", "global: {}")


@pytest.mark.parametrize(("name", "key"), [
    ("DOLT_ROOT_PASSWORD", "doltRootPassword"), ("slack_api_url", "slackApiUrl"),
    ("api_token", "apiToken"), ("2FA_SECRET", "s2faSecret"), ("prefectApiKey", "prefectApiKey"),
])
def test_secret_config_keys_are_camel_case(name: str, key: str):
    assert secretscan.config_key(name) == key


def test_file_template_escapes_dollar_braces_and_places_secrets():
    content = "url: ${NOT_A_KEY}\npassword: pw-1\n"
    assert file_template(content, [("dbPassword", "pw-1")]) == \
        "url: $${NOT_A_KEY}\npassword: ${dbPassword}\n"


def test_secrets_script_quotes_every_value_for_the_shell():
    imported = Imported({}, {"a": "it's $HOME `x`", "b": "line1\nline2"}, Report(), True)
    script = secrets_script(imported, "prod")
    assert "pulumi config set --secret --stack prod a -- 'it'\"'\"'s $HOME `x`'" in script
    assert "pulumi config set --secret --stack prod b -- 'line1\nline2'" in script


# --- compose syntax -----------------------------------------------------------------------

@pytest.mark.parametrize(("entry", "port"), [
    ("8000", Port(8000, None)),
    ("8080:80", Port(80, 8080)),
    ("127.0.0.1:5432:5432", Port(5432, 5432, "127.0.0.1")),
    ("9000:9000/tcp", Port(9000, 9000)),
    (3000, Port(3000, None)),
    ({"target": 80, "published": "8081", "host_ip": "127.0.0.1"}, Port(80, 8081, "127.0.0.1")),
])
def test_ports_short_and_long_forms(entry, port):
    assert parse_port(entry) == port


@pytest.mark.parametrize("entry", ["53:53/udp", "8000-8010:8000-8010", "[::1]:80:80",
                                   {"target": 53, "protocol": "udp"}])
def test_ports_the_stack_cannot_publish_are_refused(entry):
    with pytest.raises(UnreadableError):
        parse_port(entry)


def test_volumes_resolve_binds_against_the_compose_directory(tmp_path: Path):
    vol = parse_volume("../data:/app/data:ro", tmp_path / "deploy")
    assert (vol.kind, vol.source, vol.read_only) == ("bind", str(tmp_path / "data"), True)
    assert parse_volume("pgdata:/var/lib/postgresql/data", tmp_path).kind == "volume"
    long = parse_volume({"type": "bind", "source": "./x", "target": "/x"}, tmp_path)
    assert long.source == str(tmp_path / "x")
    for bad in ("/only/a/target", {"type": "tmpfs", "target": "/tmp"}, "a:/b:nocopy"):
        with pytest.raises(UnreadableError):
            parse_volume(bad, tmp_path)


@pytest.mark.parametrize(("text", "value"), [("5s", 5), ("1m30s", 90), ("500ms", 1),
                                             ("2h", 7200), (10, 10)])
def test_durations(text, value):
    assert seconds(text) == value


def test_sizes_names_images_and_tests():
    assert [megabytes(v) for v in ("512m", "1g", "1.5GB", 268435456)] == [512, 1024, 1536, 256]
    assert service_name("BioCirV_ETL_db") == "biocirv-etl-db" and service_name("1x") == "s-1x"
    assert image_repo("docker.io/library/postgres:16@sha256:" + "0" * 64) == "postgres"
    assert image_repo("localhost:5000/team/app:1") == "team/app"
    assert health_test("pg_isready") == ["CMD-SHELL", "pg_isready"]
    assert health_test(["NONE"]) is None


# --- proxies ------------------------------------------------------------------------------

def test_caddyfile_routes_through_the_real_caddy_adapt(tmp_path: Path):
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text("{$HOST} {\n  encode gzip\n  basic_auth /admin* {\n"
                         "    u $2a$10$abcdefghijklmnopqrstuu6ZC3Wc1fUTy9iKg7nkWw1eAkr3nCdYO\n  }\n"
                         "  handle /prefect/* {\n    reverse_proxy prefect-server:4200\n  }\n"
                         "  handle_path /admin* {\n    reverse_proxy admin:9000\n  }\n"
                         "  uri strip_prefix /docs\n  reverse_proxy /docs* docs:80\n"
                         "  reverse_proxy app:8000\n}\n")
    found = caddy_import(adapt_caddyfile(caddyfile, {"HOST": "example.org"}), "c")
    assert set(found.routes) == {
        ProxyRoute("/prefect", "prefect-server", 4200, False, False, "c"),
        ProxyRoute("/admin", "admin", 9000, True, True, "c"),
        ProxyRoute("/docs", "docs", 80, True, False, "c"),
        ProxyRoute("/", "app", 8000, False, False, "c")}
    assert (found.domain, found.tls, found.compression) == ("example.org", "acme", True)


def test_caddy_http_only_sites_mean_tls_off(tmp_path: Path):
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(":80 {\n  reverse_proxy app:8000\n}\n")
    found = caddy_import(adapt_caddyfile(caddyfile, {}), "c")
    assert found.tls == "off" and found.routes == [ProxyRoute("/", "app", 8000, source="c")]


def test_a_broken_caddyfile_is_reported_with_caddys_message(tmp_path: Path):
    from components.proxyimport import ProxyImportError

    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text("localhost {\n  no_such_directive\n}\n")
    with pytest.raises(ProxyImportError, match="caddy adapt Caddyfile failed: .*no_such_directive"):
        adapt_caddyfile(caddyfile, {})


def test_traefik_labels_become_routes_with_ports_strip_and_auth():
    services = {
        "minio": {"labels": {
            "traefik.http.routers.api.rule": "PathPrefix(`/minio`)",
            "traefik.http.routers.api.service": "s3",
            "traefik.http.routers.api.middlewares": "strip@docker",
            "traefik.http.middlewares.strip.stripprefix.prefixes": "/minio",
            "traefik.http.services.s3.loadbalancer.server.port": "9000",
            "traefik.http.routers.console.rule": "Host(`x.org`) && PathPrefix(`/console`)",
            "traefik.http.routers.console.service": "ui",
            "traefik.http.routers.console.middlewares": "login",
            "traefik.http.middlewares.login.basicauth.users": "u:$$apr1$$x",
            "traefik.http.services.ui.loadbalancer.server.port": "9001"}},
        "off": {"labels": ["traefik.enable=false", "traefik.http.routers.o.rule=PathPrefix(`/o`)"]},
        "odd": {"labels": ["traefik.http.routers.h.rule=HeadersRegexp(`X`, `y`)"]},
    }
    found = traefik_import({"entrypoints.web.address": ":80"}, services, "traefik")
    routes = {(r.prefix, r.host, r.port, r.strip, r.auth) for r in found.routes}
    assert routes == {("/minio", "minio", 9000, True, False),
                      ("/console", "minio", 9001, False, True)}
    assert found.domain == "x.org" and found.tls == "off"
    assert any("routers.h.rule" in path for path, _ in found.unmapped)
