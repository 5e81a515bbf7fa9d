import gc
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The stacks are evaluated as for this machine's Docker daemon: a DOCKER_HOST or DOCKER_CONTEXT
# in the caller's shell would make relative bind mounts (dev's ./flows) refused
# (components/daemon.py). Tests that need a remote daemon set them with monkeypatch.
for _variable in ("DOCKER_HOST", "DOCKER_CONTEXT"):
    os.environ.pop(_variable, None)

# Garbage collection: each mock evaluation allocates ~10^5 objects (Outputs, futures, protobuf
# messages), much of it in reference cycles. Automatic collection walked them a fifth of a
# second at a time, some 20 times per worker, and pytest's own full collections at the end
# walked everything left: together 0.7-1 s of CPU per worker, for memory the process gives back
# at exit anyway. A worker holds 150-230 MiB at its peak without it (measured 2026-11-30).
# A test that needs garbage collected calls gc.collect() itself.
gc.disable()


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure() -> None:
    """pytest collects garbage as it ends, to report errors raised in finalizers: with the
    session's garbage uncollected that is a walk of everything the worker allocated, and the
    process ends next. Freeze it first (tryfirst: before pytest's own hook)."""
    gc.freeze()


# A module whose every test is live says so at its top (`pytestmark = pytest.mark.live`, or a
# list starting with it).
LIVE_MODULE = re.compile(r"^pytestmark = \[?pytest\.mark\.live\b", re.MULTILINE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The unit suite (`-m "not live"`) does not import the live-only modules (the stack
    runner, the live Prefect's clients, the proxies' stand-ins) only to deselect every test
    in them: a quarter of a second of each worker's start."""
    if config.option.markexpr == "not live" and collection_path.name.startswith("test_") \
            and collection_path.suffix == ".py":
        return bool(LIVE_MODULE.search(collection_path.read_text())) or None
    return None


# Test modules that run on one worker because they share what is costly to load, paid once
# per worker: pulumi_kubernetes's types (a second of CPU; test_churn and test_kubernetes also
# evaluate the Kubernetes example once between them) and check-jsonschema (0.2 s).
SHARED_WORKER = {
    "test_churn": "kubernetes", "test_kubernetes": "kubernetes",
    "test_kubernetes_headers": "kubernetes",
    "test_render": "check-jsonschema", "test_workflows": "check-jsonschema",
}


# tryfirst: xdist's worker reads the groups in its own modifyitems hook, registered after this
# file, so it runs first unless told otherwise (then no test had a group and modules split).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For `pytest -n 2 --dist loadgroup` (./run-tests): each test module stays on one worker
    (module-scoped stacks and evaluations are built once), and every test that starts an
    emitted stack (tests/test_live*.py) shares one worker, so live stacks never compete for
    the machine-wide lock or the CPU. Live tests elsewhere run Prefect's own code without a
    stack: their modules go to either worker, beside the stacks. Modules that share a costly
    import or evaluation share a worker too (SHARED_WORKER)."""
    for item in items:
        module = item.module.__name__
        starts_stacks = module.startswith("test_live")
        group = ("live" if starts_stacks and item.get_closest_marker("live")
                 else SHARED_WORKER.get(module, module))
        item.add_marker(pytest.mark.xdist_group(group))
