"""prefect-stack lean: keep out of a long-running Prefect process what it holds but never uses.
Imported by prefect_guard.py and prefect_worker.py before anything imports Prefect.

text_unidecode (python-slugify's transliteration backend) reads its whole table at import:
65,535 strings, 3.6 MiB of every Prefect process at rest (measured with tracemalloc on an
API replica, README "Memory at rest"). `import prefect` loads it, because each Block class
slugifies its own ASCII name as it is defined. For ASCII text the table maps every character
to itself, so a process that only slugifies ASCII never needs it. `lazy_unidecode` puts a
stand-in in its place that answers ASCII text itself and loads the real module (from the
same files, so with the same table) the first time anything else is asked of it.

`release_idle_vacuum_connection` (the guard's server and services processes) closes the
connection Prefect's database vacuum keeps to itself once it has been idle a while.

Needs only the Prefect in the image; each is a no-op where what it changes is missing.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from importlib.machinery import ModuleSpec

UNIDECODE = "text_unidecode"


class LazyModule(types.ModuleType):
    """Stands in for a module until an attribute other than `unidecode` is asked for, or
    `unidecode` is given text the stand-in does not answer itself."""

    def __init__(self, spec: ModuleSpec) -> None:
        super().__init__(spec.name)
        self.__spec__, self.__file__ = spec, spec.origin
        if spec.submodule_search_locations is not None:  # a package, as text_unidecode is
            self.__path__ = list(spec.submodule_search_locations)
        self.__loader__ = spec.loader
        self._prefect_stack_real: types.ModuleType | None = None
        self._prefect_stack_lock = threading.Lock()

    def real(self) -> types.ModuleType:
        """The module itself, executed once from its own spec (its files, its data)."""
        with self._prefect_stack_lock:
            if self._prefect_stack_real is None:
                spec = self.__spec__
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._prefect_stack_real = module
            return self._prefect_stack_real

    def unidecode(self, txt):
        # text_unidecode maps each of the 127 non-NUL ASCII characters to itself and NUL to
        # NUL, so its answer for ASCII text is the text.
        if isinstance(txt, str) and txt.isascii():
            return txt
        return self.real().unidecode(txt)

    def __getattr__(self, name: str):
        return getattr(self.real(), name)


def lazy_unidecode() -> LazyModule | None:
    """Install the stand-in for text_unidecode; None when there is nothing to stand in for."""
    if UNIDECODE in sys.modules:
        return None
    spec = importlib.util.find_spec(UNIDECODE)
    if spec is None or spec.loader is None:
        return None
    module = LazyModule(spec)
    sys.modules[UNIDECODE] = module
    return module


# Seconds a database vacuum's own connection may sit unused before it is closed.
VACUUM_IDLE_SECONDS = 30.0


def release_idle_vacuum_connection(idle: float = VACUUM_IDLE_SECONDS) -> bool:
    """Close the database vacuum's dedicated connection once it has been unused for `idle` s.

    Prefect 3.8.8's db_vacuum runs its batches on a connection of its own (a pool of one,
    without the API's statement timeout, `_maintenance_session`) and keeps it open for good
    after its first run: on PostgreSQL an idle backend of 6-9 MiB in every Prefect process
    that ever ran a vacuum task, for work done once per vacuum interval (an hour here).
    Each vacuum session still gets that connection; only when none has used it for `idle`
    seconds is its pool emptied (SQLAlchemy's `dispose()`: connections checked out are left
    alone), and the next batch opens a new one. Imports Prefect: call it after the guard
    installed itself. False (nothing changed) when this Prefect has no such session."""
    import asyncio
    from contextlib import asynccontextmanager

    try:
        from prefect.server.services import db_vacuum
    except ImportError:
        return False
    session = getattr(db_vacuum, "_maintenance_session", None)
    configs = getattr(db_vacuum, "_MAINTENANCE_CONFIGS", None)
    if session is None or not isinstance(configs, dict):
        return False
    # "disposing" holds the running dispose task: the event loop keeps only a weak reference
    state: dict = {"active": 0, "timer": None, "disposing": None}

    async def dispose() -> None:
        for config in list(configs.values()):
            await (await config.engine()).dispose()

    def later() -> None:
        state["timer"] = None
        if state["active"] == 0:
            state["disposing"] = asyncio.ensure_future(dispose())

    @asynccontextmanager
    async def released(*args, **kwargs):
        state["active"] += 1
        if state["timer"] is not None:
            state["timer"].cancel()
            state["timer"] = None
        try:
            async with session(*args, **kwargs) as opened:
                yield opened
        finally:
            state["active"] -= 1
            if state["active"] == 0:
                state["timer"] = asyncio.get_running_loop().call_later(idle, later)

    db_vacuum._maintenance_session = released
    return True
