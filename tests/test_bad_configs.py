"""tests/bad_configs/: malformed stack files, each refused before any resource is registered,
with a message naming the key. Each file's first line says what the refusal must contain:
`# expect: prefect-stack:<key path> | <text>`. Files are read as the Pulumi CLI reads them
(YAML 1.2: `yes`/`on`/`off` are strings, not booleans)."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
from harness import ROOT, Evaluation, evaluate, known_secret

from components.dryrun import stack_file

CORPUS = sorted((ROOT / "tests" / "bad_configs").glob("*.yaml"))


def expectation(path: Path) -> tuple[str, str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be `# expect: KEY | TEXT`"
    key, _, text = first.removeprefix("# expect: ").partition(" | ")
    return key, text


def test_corpus_has_at_least_thirty_configs():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_bad_config_is_refused_naming_the_key_before_anything_is_registered(path):
    key, text = expectation(path)
    config, secure = stack_file(path)
    evaluation = Evaluation()
    with pytest.raises(pulumi.RunError) as err:
        evaluate(config, {k: known_secret(k) for k in secure}, stack="corpus", into=evaluation)
    message = str(err.value)
    assert evaluation.resources == []
    assert "Traceback" not in message
    assert key in message, message
    assert text in message, message
