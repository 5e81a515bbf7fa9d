"""Figures for `./render` (not a test): render time next to the program's own mock evaluation.

    .venv/bin/python bench/render_benchmark.py [--runs 3]

For every committed stack and example: the seconds the program takes on Pulumi's mocks
(what any `./render` must pay), the seconds `./render` takes for the same stack in each
format, and the ratio (target: within 1.5x). CPU seconds of this process (all its
threads), best of `--runs` runs, in one process so imports are not counted: other load on
the machine barely moves CPU time, where it doubles wall-clock time on a busy 2-core box.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.render import Target, evaluated, render  # noqa: E402


def best(runs: int, work: Callable[..., object], *args: object) -> float:
    times = []
    for _ in range(runs):
        started = time.process_time()
        work(*args)
        times.append(time.process_time() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    files = [ROOT / "Pulumi.dev.yaml", ROOT / "Pulumi.prod.yaml",
             *sorted((ROOT / "examples").glob("*.yaml"))]
    print(f"CPU seconds, best of {args.runs}")
    print(f"{'stack file':45} {'evaluate':>9} {'render':>9} {'compose':>9} {'ratio':>6}")
    worst = 0.0
    for path in files:
        name = path.name.removeprefix("Pulumi.").rsplit(".", 1)[0]
        target = Target(path, name)
        evaluation = best(args.runs, evaluated, target, ROOT)
        as_yaml = best(args.runs, render, target, ROOT, "yaml")
        as_compose = best(args.runs, render, target, ROOT, "compose")
        ratio = max(as_yaml, as_compose) / evaluation
        worst = max(worst, ratio)
        print(f"{str(path.relative_to(ROOT)):45} {evaluation:8.2f}s {as_yaml:8.2f}s "
              f"{as_compose:8.2f}s {ratio:5.2f}x")
    print(f"worst ratio {worst:.2f}x (target: render within 1.5x of the mock evaluation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
