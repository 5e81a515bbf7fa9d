"""Guarded Prefect processes leave text_unidecode's 3.6 MiB table unread until something needs
it (components/assets/prefect_lean.py, README "Memory at rest"): the stand-in answers as the
real module does, and the guard installs it before Prefect is imported."""

from __future__ import annotations

import json
import subprocess

import pytest
from harness import ROOT, planned

from components import scaleout, shipped, worker_launch

ASSETS = ROOT / "components" / "assets"
# Run with the live Prefect (its python-slugify and text_unidecode, as the image has them).
CHECK = """
import importlib.util, json, sys
sys.path.insert(0, {assets!r})
import prefect_lean
stand_in = prefect_lean.lazy_unidecode()
{body}
"""
SAMPLES = ["", "Secret", "JSON block", "tab\\tnul\\x00del\\x7f~", "Grüße, Ñandú", "北京 ☃", "ﬁ"]


def live_python(script: str, env: dict[str, str] | None = None) -> dict:
    from live.gate import require_live_prefect

    result = subprocess.run([str(require_live_prefect()), "-c", script], capture_output=True,
                            text=True, timeout=120, check=False, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.live
def test_importing_prefect_does_not_read_the_transliteration_table():
    out = live_python(CHECK.format(assets=str(ASSETS), body="""
import prefect, prefect.blocks.notifications
from slugify import slugify
print(json.dumps({"loaded": stand_in._prefect_stack_real is not None,
                  "slug": slugify("Hello World")}))
"""))
    assert out == {"loaded": False, "slug": "hello-world"}


@pytest.mark.live
def test_the_stand_in_answers_every_text_as_text_unidecode_does():
    out = live_python(CHECK.format(assets=str(ASSETS), body=f"""
spec = importlib.util.find_spec("text_unidecode")
real = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real)
samples = {SAMPLES!r}
ascii_only = [stand_in.unidecode(s) == real.unidecode(s) for s in samples if s.isascii()]
loaded_by_ascii = stand_in._prefect_stack_real is not None
rest = [stand_in.unidecode(s) == real.unidecode(s) for s in samples if not s.isascii()]
print(json.dumps({{"ascii": ascii_only, "loaded_by_ascii": loaded_by_ascii, "rest": rest,
                  "table": len(stand_in._replaces) == len(real._replaces)}}))
"""))
    assert out == {"ascii": [True] * 4, "loaded_by_ascii": False, "rest": [True] * 3,
                   "table": True}


@pytest.mark.live
def test_the_guard_installs_the_stand_in_before_prefect_is_imported(tmp_path):
    out = live_python(f"""
import json, sys
sys.path.insert(0, {str(ASSETS)!r})
import prefect_guard
try:
    prefect_guard.main(["run", "prefect", "version"])
except SystemExit:
    pass
module = sys.modules["text_unidecode"]
print(json.dumps({{"prefect": "prefect.cli" in sys.modules, "kind": type(module).__name__,
                  "loaded": module._prefect_stack_real is not None}}))
""", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path),
          "PREFECT_STACK_GUARD_STATUS": str(tmp_path / "status.json")})
    assert out == {"prefect": True, "kind": "LazyModule", "loaded": False}


@pytest.mark.live
def test_the_worker_launcher_installs_the_stand_in_before_prefect_is_imported():
    out = live_python(f"""
import asyncio, importlib.util, json, sys
sys.path.insert(0, {str(ASSETS)!r})
spec = importlib.util.spec_from_file_location("prefect_worker", {str(ASSETS / "prefect_worker.py")!r})
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
seen = {{}}

async def run(args):  # stands in for the worker: what it finds when it imports Prefect
    seen["before"] = "prefect" in sys.modules
    import prefect.workers.process
    module = sys.modules["text_unidecode"]
    seen.update(kind=type(module).__name__, loaded=module._prefect_stack_real is not None)

launcher.run = run
launcher.main(["prefect", "worker", "start", "--pool", "p", "--type", "process"])
print(json.dumps(seen))
""")
    assert out == {"before": False, "kind": "LazyModule", "loaded": False}


def test_every_guarded_container_and_worker_gets_the_lean_imports_module_beside_its_script():
    config = {"database": {"kind": "postgres"}, "redis": {"enabled": True},
              "server": {"replicas": 2, "servicesReplicas": 2}}
    for stack in ({}, config):
        plan = planned(stack)
        scripts = (scaleout.GUARD_PATH, worker_launch.WORKER_PATH)
        launched = [s for s in plan.services if s.command and set(scripts) & set(s.command)]
        names = {s.name for s in launched}
        assert "prefect-server" in names and any(n.startswith("worker-") for n in names), stack
        for spec in launched:
            uploads = {u.path: u for u in spec.uploads}
            lean = uploads[shipped.path(shipped.LEAN)]
            assert lean.content == (ASSETS / shipped.LEAN).read_text(), spec.name
