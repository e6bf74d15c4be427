"""Can `mtl runs` and `mtl compare` still answer in under 2 s over 1,000 runs, some broken?

Writes 1,000 realistic run folders (those of bench_compare.py: a resolved recipe, a 100-epoch
history.csv, a metrics.csv, a full run.json), then breaks some of them the ways real folders
break: runs that failed, runs marked running whose process is gone (crashed), and garbled
ones (a truncated run.json, an empty run.json, a metrics.csv cut mid-line, recipe.yaml that is
not YAML, a folder holding only history.csv). Times `mtl runs` and `mtl compare` as
subprocesses, as a user runs them, checks that each broken run is reported, and prints the
median of several runs.

Usage:
    .venv/bin/python benchmarks/bench_many_runs.py [--runs 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compare import make_results, timed  # noqa: E402

from mtl_runner.results.reader import RecipeCache  # noqa: E402

TARGET_S = 2.0
GARBLE = {
    "truncated run.json": lambda run: (run / "run.json").write_text('{"status": "compl'),
    "empty run.json": lambda run: (run / "run.json").write_text(""),
    "metrics.csv cut mid-line": lambda run: (run / "metrics.csv").write_text(
        (run / "metrics.csv").read_text()[:-30]),
    "recipe.yaml not YAML": lambda run: (run / "recipe.yaml").write_bytes(b"name: [\x00\xff"),
    "only history.csv": lambda run: [(run / n).unlink() for n in ("run.json", "recipe.yaml",
                                                                   "metrics.csv")],
}


def set_status(run: Path, **fields) -> None:
    info = json.loads((run / "run.json").read_text())
    info.update(fields)
    (run / "run.json").write_text(json.dumps(info))


def break_some(results: Path, failed: int, crashed: int, garbled: int) -> dict[str, int]:
    """Turns some completed runs into failed, crashed and garbled ones; returns the counts."""
    runs = sorted(p for p in results.iterdir())[60:]  # keep the single-task baselines intact
    step = max(1, len(runs) // (failed + crashed + garbled))
    chosen = iter(runs[::step])
    for _ in range(failed):
        run = next(chosen)
        (run / "metrics.csv").unlink()
        set_status(run, status="failed", error="RunError: the loss became NaN at epoch 3")
    for _ in range(crashed):
        run = next(chosen)
        (run / "metrics.csv").unlink()
        set_status(run, status="running", pid=2**22 + 11, host=os.uname().nodename)
    kinds = list(GARBLE)
    for i in range(garbled):
        GARBLE[kinds[i % len(kinds)]](next(chosen))
    return {"failed": failed, "crashed": crashed, "garbled": garbled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    mtl = [sys.executable, "-m", "mtl_runner"]
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "results"
        results.mkdir()
        make_results(results, args.runs)
        counts = break_some(results, failed=args.runs // 20, crashed=args.runs // 20,
                            garbled=args.runs // 20)
        print(f"{args.runs} run directories in {results} ({counts}); {os.cpu_count()} CPUs; "
              f"median of {args.repeat} runs (min, max) in seconds, target < {TARGET_S:.0f} s:")
        # `only history.csv` folders hold no run.json, recipe or metrics: still a run folder
        garbled = counts["garbled"]
        cases = {
            "mtl runs": [*mtl, "runs", "--results", str(results)],
            "mtl runs --format json": [*mtl, "runs", "--results", str(results), "--format", "json"],
            "mtl compare": [*mtl, "compare", "--results", str(results)],
        }
        cache = results / RecipeCache.NAME
        cold = []
        for _ in range(args.repeat):  # the first read of a folder parses every recipe.yaml
            cache.unlink(missing_ok=True)
            cold += timed(cases["mtl compare"], 1)
        print(f"  {'mtl compare (cold cache)':<24} {statistics.median(cold):.3f}  "
              f"({min(cold):.3f}, {max(cold):.3f})")
        slow = []
        for name, command in cases.items():
            times = timed(command, args.repeat)
            median = statistics.median(times)
            print(f"  {name:<24} {median:.3f}  ({min(times):.3f}, {max(times):.3f})"
                  + ("" if median < TARGET_S else "  SLOWER THAN THE TARGET"))
            slow += [name] if median >= TARGET_S else []
            done = subprocess.run(command, capture_output=True, text=True)
            skipped = done.stderr.count("Warning: skipped")
            assert skipped == garbled, f"{name}: {skipped} skipped runs reported, not {garbled}"
            if name == "mtl runs":
                words = done.stdout.split()
                assert words.count("failed") == counts["failed"], "failed runs not listed"
                assert words.count("crashed") == counts["crashed"], "crashed runs not listed"
            if name == "mtl compare":
                assert f"{counts['failed'] + counts['crashed']} run(s) not completed left out " \
                       "(crashed, failed)" in done.stderr, done.stderr[-500:]
        print(f"  recipe cache: {cache.stat().st_size / 1e6:.1f} MB")
        print(f"  broken runs reported by each command: {garbled} skipped as garbled, "
              f"{counts['failed']} failed, {counts['crashed']} crashed")
        if slow:
            raise SystemExit(f"\nslower than {TARGET_S} s: {', '.join(slow)}")


if __name__ == "__main__":
    main()
