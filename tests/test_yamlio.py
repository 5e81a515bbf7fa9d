"""Stack and compose files are read with libyaml where PyYAML has it, by the same rules as
before, and a file that is not YAML is reported with its line quoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import render
from components.compose import ComposeError, load_project
from components.dryrun import stack_file

BROKEN = "config:\n  prefect-stack:server:\n    replicas: [1\n  prefect-stack:workers: []\n"


def test_a_stack_file_reads_only_true_and_false_as_booleans_as_the_pulumi_cli_does(tmp_path):
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text("config:\n  prefect-stack:flags:\n"
                    "    a: yes\n    b: on\n    c: off\n    d: true\n    e: False\n")
    config, _ = stack_file(path)
    assert config["flags"] == {"a": "yes", "b": "on", "c": "off", "d": True, "e": False}


def test_a_stack_file_that_is_not_yaml_is_reported_with_the_line_quoted(tmp_path, capsys):
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(BROKEN)
    assert render.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "is not valid YAML" in err and "line 4, column 24" in err
    assert "prefect-stack:workers: []\n" in err and "^" in err, err


def test_a_compose_file_that_is_not_yaml_is_reported_with_the_line_quoted(tmp_path: Path):
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  app:\n    image: [busybox\n  db:\n    image: postgres\n")
    with pytest.raises(ComposeError) as raised:
        load_project(path, [])
    assert "not valid YAML" in str(raised.value) and "^" in str(raised.value)
