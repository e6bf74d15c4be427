"""Every benchmark of issue 7, side by side and alternately, into results.md and results.json.

Each row runs the project and its plain-Keras (or other) counterpart alternately — A B, then
B A — several times, so that a busy machine slows both; it reports the medians, the median of
the per-pair ratios and their range (min–max), the goal and whether it is met. Whole processes
are timed with their peak memory from `os.wait4` (the child's own rusage).

    python benchmarks/run_all.py [--quick] [--only quickstart,resnet,...] [--out benchmarks]

`--quick` runs each benchmark once on tiny settings (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
MTL = [PYTHON, "-m", "mtl_runner"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def process(command: list[str], cwd: Path = ROOT) -> dict:
    """Runs a command; its wall time, peak resident memory (MiB) and stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, env=ENV)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{stderr[-3000:]}")
    return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024, "stdout": stdout}


def last_json(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def alternate(first, second, repeats: int) -> tuple[list, list]:
    """first(), second() alternately: AB, BA, AB, ..."""
    a, b = [], []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return a, b


def spread(values: list[float]) -> dict:
    if not values:
        return {"median": None, "min": None, "max": None, "values": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def row(what: str, project: list[float], other: list[float], ratios: list[float], unit: str,
        goal: str, met, note: str = "", other_name: str = "plain Keras") -> dict:
    ratio = spread(ratios)
    return {"what": what, "unit": unit, "project": spread(project), "other": spread(other),
            "other_name": other_name, "ratio": ratio, "goal": goal, "met": met(ratio["median"]),
            "note": note}


# --- the benchmarks ------------------------------------------------------------------------


def bench_quickstart(quick: bool, repeats: int) -> list[dict]:
    """Whole-process time and peak memory: `mtl train recipes/quickstart.yaml` vs plain Keras.

    Both stop at the recipe's early stopping, capped at the same number of epochs, so that
    runs with different stopping epochs are still compared per epoch as well."""
    epochs = 2 if quick else 60
    results = Path(tempfile.mkdtemp())

    def project():
        run = process([*MTL, "train", "recipes/quickstart.yaml", "--results", str(results),
                       "--set", f"training.epochs={epochs}"])
        run["epochs"] = int(re.search(r"\((\d+) epochs\)", run["stdout"]).group(1))
        return run

    def plain():
        run = process([PYTHON, str(HERE / "plain_keras_quickstart.py"), "--epochs", str(epochs)])
        run["epochs"] = int(re.search(r"\((\d+) epochs\)", run["stdout"]).group(1))
        return run

    a, b = alternate(project, plain, repeats)
    note = f"at most {epochs} epochs, early stopping as in the recipe; epochs run: mtl " \
           f"{[r['epochs'] for r in a]}, Keras {[r['epochs'] for r in b]}"
    return [
        row("`mtl train recipes/quickstart.yaml`: whole process", [r["seconds"] for r in a],
            [r["seconds"] for r in b], [x["seconds"] / y["seconds"] for x, y in zip(a, b)], "s",
            "≤ 1.0", lambda r: r <= 1.0, note),
        row("quickstart: whole process per epoch run", [r["seconds"] / r["epochs"] for r in a],
            [r["seconds"] / r["epochs"] for r in b],
            [(x["seconds"] / x["epochs"]) / (y["seconds"] / y["epochs"]) for x, y in zip(a, b)],
            "s/epoch", "≤ 1.0", lambda r: r <= 1.0, "includes start-up, divided by epochs"),
        row("quickstart: peak memory of the process", [r["peak_mib"] for r in a],
            [r["peak_mib"] for r in b], [x["peak_mib"] / y["peak_mib"] for x, y in zip(a, b)],
            "MiB", "≤ 1.0", lambda r: r <= 1.0),
    ]


def bench_resnet(quick: bool, repeats: int) -> list[dict]:
    """Steady-state ResNet50 fine-tune throughput at 96×96, after the first epoch."""
    size = ["--n", "64", "--epochs", "2"] if quick else ["--n", "240", "--epochs", "3"]
    script = str(HERE / "plain_keras_resnet.py")
    a, b = alternate(lambda: last_json(process([PYTHON, script, "--impl", "mtl", *size])["stdout"]),
                     lambda: last_json(process([PYTHON, script, "--impl", "keras", *size])["stdout"]),
                     repeats)
    return [row("ResNet50 fine-tune at 96×96, steady-state throughput",
                [r["examples_per_s"] for r in a], [r["examples_per_s"] for r in b],
                [x["examples_per_s"] / y["examples_per_s"] for x, y in zip(a, b)], "examples/s",
                "≥ 0.95", lambda r: r >= 0.95,
                f"{a[0]['train_examples']} train images, {' '.join(size)}, batch 32, weights none; "
                f"epoch seconds mtl {[r['epoch_seconds'] for r in a]}, "
                f"Keras {[r['epoch_seconds'] for r in b]}")]


def bench_feature_cache(quick: bool, repeats: int) -> list[dict]:
    """Frozen-backbone stage over 10 epochs, features cached vs computed every epoch."""
    out = Path(tempfile.mkdtemp()) / "feature_cache.json"
    process([PYTHON, str(HERE / "feature_cache.py"), "--repeats", str(repeats),
             "--epochs", "2" if quick else "10", "--out", str(out)])
    summary = json.loads(out.read_text())
    runs = summary["runs"]
    cached = [r["seconds"] for r in runs if r["cached"]]
    plain = [r["seconds"] for r in runs if not r["cached"]]
    same = summary["accuracy_cached"] == summary["accuracy_uncached"]
    return [row("frozen-backbone stage (ResNet50, 600 shapes at 32×32, 10 epochs): cached "
                "features, speed-up", cached, plain, [p / c for c, p in zip(cached, plain)], "s",
                "≥ 5× (same accuracy ±1 pt)", lambda r: r >= 5 and same,
                f"test accuracy cached {summary['accuracy_cached']}, uncached "
                f"{summary['accuracy_uncached']}", other_name="without cache")]


def bench_three_tasks(quick: bool, repeats: int) -> list[dict]:
    """One 3-task run vs the three single-task runs of the same trunk (`--baselines`)."""
    epochs = 2 if quick else 40
    project, singles = [], []
    for _ in range(repeats):
        results = Path(tempfile.mkdtemp())
        process([*MTL, "train", "recipes/quickstart.yaml", "--baselines", "--results", str(results),
                 "--set", f"training.epochs={epochs}", "--set", "training.early_stopping=null"])
        runs = [json.loads(p.read_text()) for p in results.glob("*/run.json")]
        project.append(sum(r["train_seconds"] for r in runs if not r["role"].startswith("baseline")))
        singles.append(sum(r["train_seconds"] for r in runs if r["role"].startswith("baseline")))
    return [row("3-task quickstart vs its 3 single-task runs (training time)", project, singles,
                [p / s for p, s in zip(project, singles)], "s", "≤ 0.45", lambda r: r <= 0.45,
                f"{epochs} epochs each, no early stopping; `train_seconds` of each run, "
                f"single-task = sum of the three", other_name="3 single-task runs")]


def bench_input(quick: bool, repeats: int) -> list[dict]:
    size = ["--n", "100", "--epochs", "2", "--repeats", "1"] if quick else \
        ["--n", "600", "--epochs", "10", "--repeats", str(repeats)]
    result = last_json(process([PYTHON, str(HERE / "input_pipeline.py"), *size])["stdout"])
    return [row("input pipeline: PNG files from disk vs the same images in memory "
                "(throughput ratio)", result["disk_s"], result["memory_s"], result["ratios"], "s",
                "≥ 0.9", lambda r: r >= 0.9,
                f"{' '.join(size)}; whole `train()` incl. reading; ratio = memory time / disk time",
                other_name="in memory")]


def bench_cli(quick: bool, repeats: int) -> list[dict]:
    sys.path.insert(0, str(HERE))
    from bench_compare import make_results

    results = Path(tempfile.mkdtemp())
    make_results(results, 200)
    commands = {"`mtl --help`": [*MTL, "--help"],
                "`mtl validate recipes/quickstart.yaml`": [*MTL, "validate", "recipes/quickstart.yaml"],
                "`mtl compare` over 200 runs": [*MTL, "compare", "--results", str(results)]}
    rows = []
    for name, command in commands.items():
        times = [process(command)["seconds"] for _ in range(max(repeats, 3) + 2)]
        rows.append(row(f"CLI latency: {name}", times, [], [statistics.median(times)], "s",
                        "< 0.5 s", lambda r: r < 0.5, "whole process, median of "
                        f"{len(times)}", other_name="—"))
    return rows


def bench_bf16(quick: bool, repeats: int) -> list[dict]:
    flags = open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else ""
    support = sorted({f for f in ("amx_bf16", "amx_tile", "avx512_bf16") if re.search(rf"\b{f}\b", flags)})
    if not support:
        return [{"what": "bf16 vs float32", "note": "no AMX or AVX512-BF16 on this CPU: skipped",
                 "met": None}]
    size = ["--n", "64", "--epochs", "2"] if quick else ["--n", "160", "--epochs", "3"]
    script = str(HERE / "plain_keras_resnet.py")

    def run(precision):
        return lambda: last_json(process([PYTHON, script, "--impl", "keras", "--precision", precision,
                                          "--inference", *size])["stdout"])

    a, b = alternate(run("mixed_bfloat16"), run("float32"), repeats)
    note = f"CPU flags: {', '.join(support)}; ResNet50 96×96, {' '.join(size)}, batch 32"
    return [
        row("bf16 (mixed_bfloat16) vs float32: ResNet50 training throughput",
            [r["examples_per_s"] for r in a], [r["examples_per_s"] for r in b],
            [x["examples_per_s"] / y["examples_per_s"] for x, y in zip(a, b)], "examples/s",
            "report (> 1: bf16 faster)", lambda r: r > 1.0, note, other_name="float32"),
        row("bf16 (mixed_bfloat16) vs float32: ResNet50 inference throughput",
            [r["inference_examples_per_s"] for r in a], [r["inference_examples_per_s"] for r in b],
            [x["inference_examples_per_s"] / y["inference_examples_per_s"] for x, y in zip(a, b)],
            "examples/s", "report (> 1: bf16 faster)", lambda r: r > 1.0, note,
            other_name="float32"),
    ]


BENCHMARKS = {"quickstart": bench_quickstart, "resnet": bench_resnet,
              "feature_cache": bench_feature_cache, "three_tasks": bench_three_tasks,
              "input": bench_input, "cli": bench_cli, "bf16": bench_bf16}


# --- the report ----------------------------------------------------------------------------


def machine() -> dict:
    def command(*args):
        try:
            return subprocess.run(args, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    lscpu = command("lscpu")
    model = re.search(r"Model name:\s*(.+)", lscpu)
    load = os.getloadavg()
    versions = subprocess.run(
        [PYTHON, "-c", "import tensorflow as tf, keras, numpy, mtl_runner; print(tf.__version__, "
         "keras.__version__, numpy.__version__, mtl_runner.__version__)"],
        capture_output=True, text=True, env=ENV).stdout.split()
    return {"cpu": model.group(1) if model else platform.processor(), "nproc": command("nproc"),
            "memory": command("sh", "-c", "free -g | awk '/Mem:/ {print $2\" GiB\"}'"),
            "load_average_at_start": [round(x, 2) for x in load],
            "python": platform.python_version(),
            "tensorflow": versions[0] if versions else "?", "keras": versions[1] if versions else "?",
            "numpy": versions[2] if versions else "?", "mtl_runner": versions[3] if versions else "?",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def markdown(info: dict, rows: list[dict], seconds: float, repeats: int) -> str:
    lines = [
        "# Benchmarks", "",
        f"Machine: {info['cpu']}, {info['nproc']} CPUs, {info['memory']}; load average at start "
        f"{info['load_average_at_start']} (a shared machine: compare the ratios, not the absolute numbers).",
        f"Versions: Python {info['python']}, TensorFlow {info['tensorflow']}, Keras {info['keras']}, "
        f"NumPy {info['numpy']}, mtl {info['mtl_runner']}. Date: {info['date']}. "
        f"`make bench` took {seconds / 60:.1f} min; {repeats} alternating repeats per row.", "",
        "Each ratio is project / counterpart (for throughput: higher is better; for time and "
        "memory: lower is better), the median of the per-pair ratios, with their range.", "",
        "| what | project (median) | counterpart (median) | ratio [min–max] | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "project" not in r:
            lines.append(f"| {r['what']} | — | — | — | — | {r['note']} |")
            continue
        other = (f"{fmt(r['other']['median'])} {r['unit']} ({r['other_name']})"
                 if r["other"]["values"] else "—")
        ratio = r["ratio"]
        ratio_text = (f"{fmt(ratio['median'])} [{fmt(ratio['min'])}–{fmt(ratio['max'])}]"
                      if r["other"]["values"] else "—")
        met = "yes" if r["met"] else "**no**"
        lines.append(f"| {r['what']} | {fmt(r['project']['median'])} {r['unit']} "
                     f"[{fmt(r['project']['min'])}–{fmt(r['project']['max'])}] | {other} | "
                     f"{ratio_text} | {r['goal']} | {met} |")
    lines += ["", "Notes:", ""]
    lines += [f"- {r['what']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny settings, one repeat: a smoke test")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--merge", action="store_true",
                        help="replace these rows in an existing results.json, keep the others")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    started = time.perf_counter()
    info = machine()
    rows: list[dict] = []
    for name in args.only.split(","):
        began = time.perf_counter()
        print(f"[{name}] ...", flush=True)
        new = BENCHMARKS[name](args.quick, repeats if name not in ("resnet", "bf16") else
                               max(1, min(repeats, 2)))
        rows += new
        for r in new:
            print(f"  {r['what']}: ratio {r.get('ratio', {}).get('median')} met={r['met']}", flush=True)
        print(f"[{name}] {time.perf_counter() - began:.0f}s", flush=True)
    seconds = time.perf_counter() - started
    suffix = "-quick" if args.quick else ""
    if args.merge and (args.out / f"results{suffix}.json").exists():
        before = json.loads((args.out / f"results{suffix}.json").read_text())
        fresh = {r["what"]: r for r in rows}
        kept = [fresh.pop(r["what"], r) for r in before["rows"]]
        rows = kept + list(fresh.values())
        info, seconds = before["machine"], before["seconds"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"results{suffix}.json").write_text(json.dumps(
        {"machine": info, "seconds": seconds, "repeats": repeats, "rows": rows}, indent=2) + "\n")
    notes = Path(__file__).with_name("results_notes.md")  # hand-written: why goals were missed
    (args.out / f"results{suffix}.md").write_text(markdown(info, rows, seconds, repeats) + (
        "\n" + notes.read_text() if notes.exists() and not suffix else ""))
    print(markdown(info, rows, seconds, repeats))


if __name__ == "__main__":
    main()
