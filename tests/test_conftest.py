"""The test suite's own set-up (tests/conftest.py): what the unit suite leaves out."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import conftest
import pytest

MODULES = {
    "test_all_live.py": "import pytest\n\npytestmark = pytest.mark.live  # the real thing\n",
    "test_long_live.py": "pytestmark = [pytest.mark.live, pytest.mark.extended]\n",
    "test_some_live.py": "@pytest.mark.live\ndef test_a():\n    pass\n\ndef test_b():\n    pass\n",
    "test_extended_only.py": "pytestmark = pytest.mark.extended\n",
    "test_plain.py": "def test_a():\n    pass\n",
    "test_mentions_it.py": '"""Some tests here use\n    pytestmark = pytest.mark.live\n"""\n',
    "test_other_mark.py": "pytestmark = pytest.mark.livelier\n",
}


@pytest.mark.parametrize("markexpr, ignored", [
    ("not live", {"test_all_live.py", "test_long_live.py"}),
    ("live", set()), ("", set()), ("not extended", set())])
def test_the_unit_suite_leaves_out_only_modules_whose_every_test_is_live(
        tmp_path: Path, markexpr: str, ignored: set[str]):
    config = SimpleNamespace(option=SimpleNamespace(markexpr=markexpr))
    for name, text in MODULES.items():
        (tmp_path / name).write_text(text)
    assert {name for name in MODULES
            if conftest.pytest_ignore_collect(tmp_path / name, config)} == ignored
