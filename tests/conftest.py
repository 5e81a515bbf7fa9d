import gc
import os
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
# messages) and the shared evaluations stay alive all session, so Python's default thresholds
# (a young collection every 700 allocations, frequent full sweeps of the whole heap) spent a
# fifth of the unit suite's CPU in the collector. Collect young objects in larger batches.
gc.set_threshold(50_000, 20, 100)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported (pulumi, the providers' type modules, the tests) lives as long
    as the process: freeze it, so later collections do not walk it again."""
    gc.collect()
    gc.freeze()


# tryfirst: xdist's worker reads the groups in its own modifyitems hook, registered after this
# file, so it runs first unless told otherwise (then no test had a group and modules split).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For `pytest -n 2 --dist loadgroup` (./run-tests): each test module stays on one worker
    (module-scoped stacks and evaluations are built once), and every test that starts an
    emitted stack (tests/test_live*.py) shares one worker, so live stacks never compete for
    the machine-wide lock or the CPU. Live tests elsewhere run Prefect's own code without a
    stack: their modules go to either worker, beside the stacks. The modules that evaluate
    Kubernetes stacks share a worker (test_churn and test_kubernetes evaluate the example
    once between them): pulumi_kubernetes's types cost a second of CPU to import, once per
    worker."""
    for item in items:
        module = item.module.__name__
        starts_stacks = module.startswith("test_live")
        group = ("live" if starts_stacks and item.get_closest_marker("live")
                 else "kubernetes" if module.startswith(("test_kubernetes", "test_churn"))
                 else module)
        item.add_marker(pytest.mark.xdist_group(group))
