"""prefect-stack lean imports: keep out of a long-running Prefect process the data it imports
but never reads. Imported by prefect_guard.py before anything imports Prefect.

text_unidecode (python-slugify's transliteration backend) reads its whole table at import:
65,535 strings, 3.6 MiB of every Prefect process at rest (measured with tracemalloc on an
API replica, README "Memory at rest"). `import prefect` loads it, because each Block class
slugifies its own ASCII name as it is defined. For ASCII text the table maps every character
to itself, so a process that only slugifies ASCII never needs it. `lazy_unidecode` puts a
stand-in in its place that answers ASCII text itself and loads the real module (from the
same files, so with the same table) the first time anything else is asked of it.

Needs only the Python in the image; a no-op where text_unidecode is not installed or already
imported.
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
        self.__path__ = list(spec.submodule_search_locations or [])
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
