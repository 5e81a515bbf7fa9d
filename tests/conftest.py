import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The stacks are evaluated as for this machine's Docker daemon: a DOCKER_HOST or DOCKER_CONTEXT
# in the caller's shell would make relative bind mounts (dev's ./flows) refused
# (components/daemon.py). Tests that need a remote daemon set them with monkeypatch.
for _variable in ("DOCKER_HOST", "DOCKER_CONTEXT"):
    os.environ.pop(_variable, None)
