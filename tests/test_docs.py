"""`python -m components.docs`: the config reference, generated from the models, shows each
default as it applies and the range a value must keep to."""

from __future__ import annotations

import pytest

from components.docs import main, reference


def row(key: str) -> list[str]:
    line = next(line for line in reference().splitlines() if line.startswith(f"| `{key}` |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_a_default_that_comes_from_the_parents_default_is_shown_as_it_applies():
    _, _, default, _ = row("api.route.stripPrefix")
    assert default.startswith("`true` (from `api.route`'s default; `false` in a `api.route`")
    assert row("api.route.prefix")[2].startswith('`"/api"` (from `api.route`\'s default;')
    assert row("redis.resources.memoryMb")[2].startswith("`256` (from `redis.resources`")
    assert row("api.routes[].stripPrefix")[2] == "`false`"


def test_an_unset_container_limit_shows_the_stack_wide_default_it_falls_back_to():
    assert row("workers[].resources.memoryMb")[2] == "`resources.defaults.memoryMb` (`512`)"
    assert row("resources.defaults.memoryMb")[2].startswith("`512` (from `resources.defaults`")


@pytest.mark.parametrize(("key", "shown"), [
    ("workers[].replicas", "int, 0–50"),
    ("server.port", "int, 1–65535"),
    ("workers[].queryIntervalSeconds", "float, 0.5–300"),
    ("workers[].concurrencyLimit", "int \\| null, 1–10000"),
    ("server.resources.cpus", "float \\| null, > 0 – 256"),
    ("database.postgres.databases", "list of object, at least 1 item"),
])
def test_value_ranges_are_shown_with_the_type(key, shown):
    assert row(key)[1] == shown


def test_help_says_what_it_prints_and_how_to_write_the_readme(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m components.docs" in out
    assert "--write-readme" in out and "--section SECTION" in out and "allowed range" in out


def test_one_section_can_be_printed_alone(capsys):
    assert main(["--section", "proxy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#### `prefect-stack:proxy`") and "`proxy.tls`" in out
    assert "prefect-stack:server" not in out
