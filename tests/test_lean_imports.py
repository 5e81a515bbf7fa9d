"""Long-running Prefect processes keep out what they never use (components/assets/prefect_lean.py,
README "Memory at rest"): text_unidecode's 3.6 MiB table stays unread until something needs it
(the stand-in answers as the real module does; the guard and the worker launcher install it
before Prefect is imported), and the database vacuum's own connection is closed once idle."""

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
def test_the_guard_installs_the_stand_in_before_prefect_is_imported_and_the_vacuum_release(tmp_path):
    out = live_python(f"""
import json, sys
sys.path.insert(0, {str(ASSETS)!r})
import prefect_guard
try:
    prefect_guard.main(["run", "prefect", "version"])
except SystemExit:
    pass
module = sys.modules["text_unidecode"]
from prefect.server.services import db_vacuum
print(json.dumps({{"prefect": "prefect.cli" in sys.modules, "kind": type(module).__name__,
                  "loaded": module._prefect_stack_real is not None,
                  "vacuum": db_vacuum._maintenance_session.__module__}}))
""", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path),
          "PREFECT_STACK_GUARD_STATUS": str(tmp_path / "status.json")})
    assert out == {"prefect": True, "kind": "LazyModule", "loaded": False,
                   "vacuum": "prefect_lean"}


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


# Prefect's own db_vacuum, on SQLite (its maintenance session then uses the default one); the
# dedicated pool it keeps on PostgreSQL stood in for by an engine that counts its disposals.
VACUUM = """
import asyncio, json, sys
sys.path.insert(0, {assets!r})
import prefect_lean
from prefect.server.database import provide_database_interface
from prefect.server.services import db_vacuum

class Engine:
    disposed = 0
    async def dispose(self):
        Engine.disposed += 1

class Config:
    async def engine(self):
        return Engine()

async def main():
    db = provide_database_interface()
    await db.create_db()
    db_vacuum._MAINTENANCE_CONFIGS["url"] = Config()
    seen = {{"patched": prefect_lean.release_idle_vacuum_connection(idle=0.3)}}
    async with db_vacuum._maintenance_session(db) as session:
        await asyncio.sleep(0.5)  # a long batch: never closed while in use
        seen["during"] = Engine.disposed
    async with db_vacuum._maintenance_session(db):
        pass
    await asyncio.sleep(0.1)  # batches 0.1 s apart: still open
    async with db_vacuum._maintenance_session(db):
        pass
    seen["between_batches"] = Engine.disposed
    await asyncio.sleep(0.6)
    seen["idle"] = Engine.disposed
    print(json.dumps(seen))

asyncio.run(main())
"""


@pytest.mark.live
def test_the_vacuum_connection_is_closed_once_idle_and_never_while_in_use(tmp_path):
    out = live_python(VACUUM.format(assets=str(ASSETS)),
                      env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                           "PREFECT_HOME": str(tmp_path)})
    assert out == {"patched": True, "during": 0, "between_batches": 0, "idle": 1}
