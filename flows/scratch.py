"""A flow that keeps a file in its working directory across a pause: the process worker's
per-run temporary directory (the deployment has no set_working_directory step) must outlast
the other runs that start and end beside it (tests/test_live.py)."""

import os
import time
from pathlib import Path

from prefect import flow


@flow(log_prints=True)
def scratch(pause: float = 0) -> str:
    kept = Path("scratch.txt")
    kept.write_text(str(os.getpid()))
    print(f"working directory {os.getcwd()}")
    time.sleep(pause)
    return kept.read_text()  # FileNotFoundError (the run FAILED) if the directory went away
