"""Figures for `./render` (not a test): render time next to the program's own mock evaluation.

    .venv/bin/python bench/render_benchmark.py [--runs 3]

For every committed stack and example: the seconds the program takes on Pulumi's mocks
(what any `./render` must pay), the seconds `./render` adds to turn that evaluation into
text in each format (`render()` is exactly the two), and the ratio of the whole to the
evaluation (target: within 1.5x). Timing the formatting on its own keeps the evaluation's
run-to-run noise (threads on a busy machine) out of the ratio. CPU seconds of this process (all its
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

from components.render import Target, evaluated, text_of  # noqa: E402


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
    print(f"{'stack file':45} {'evaluate':>9} {'+yaml':>9} {'+compose':>9} {'ratio':>6}")
    worst = 0.0
    for path in files:
        name = path.name.removeprefix("Pulumi.").rsplit(".", 1)[0]
        target = Target(path, name)
        evaluation = best(args.runs, evaluated, target, ROOT)
        done = evaluated(target, ROOT)
        as_yaml = best(args.runs, text_of, done, name, "yaml")
        as_compose = best(args.runs, text_of, done, name, "compose")
        ratio = (evaluation + max(as_yaml, as_compose)) / evaluation
        worst = max(worst, ratio)
        print(f"{str(path.relative_to(ROOT)):45} {evaluation:8.3f}s {as_yaml:8.3f}s "
              f"{as_compose:8.3f}s {ratio:5.2f}x")
    print(f"worst ratio {worst:.2f}x (target: render within 1.5x of the mock evaluation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
