"""How long a job's process takes to reach its first line of work (interpreter + imports).

Each row starts a fresh interpreter that imports what Snakemake's script preamble imports
(``snakemake.script``) and then exactly the top-level imports of one ``workflow/scripts/*.py``
(read from the file), and reports the wall time from starting the process until those imports are
done. torch jobs: attack, metrics, training; table/figure jobs: tables, claims, gradient figure.

    .venv/bin/python benchmarks/startup.py [--runs 5] [--tree DIR]

``--tree`` measures another checkout's scripts and library (e.g. an older commit, for before/after).
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "torch job": ("attack_stage.py", "attack_metrics.py", "train.py"),
    "table/figure job": ("paper_table.py", "paper_claims.py", "paper_gradient_similarity.py"),
}
GOALS = {"torch job": 2.8, "table/figure job": 1.2}


def script_imports(path: Path) -> str:
    """The top-level import statements of a script, as source."""
    tree = ast.parse(path.read_text())
    nodes = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(ast.unparse(node) for node in nodes)


def time_to_ready(code: str, tree: Path) -> float:
    """Seconds from starting ``python -c code`` until it prints READY (after its imports)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "workflow"), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code + "\nprint('READY', flush=True)"],
                               stdout=subprocess.PIPE, text=True, env=env, cwd=tree)
    line = process.stdout.readline()
    seconds = time.perf_counter() - start
    process.wait()
    if line.strip() != "READY":
        raise RuntimeError(f"the imports failed (exit {process.returncode})")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per script (≥ 3)")
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout to measure")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"`.venv/bin/python {' '.join(sys.argv)}` on {platform.node()} "
          f"({os.cpu_count()} cores, Python {platform.python_version()}), "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| kind | script | min s | median s | max s | goal s |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, scripts in SCRIPTS.items():
        for name in scripts:
            code = "import snakemake.script\n" + script_imports(args.tree / "workflow" / "scripts" / name)
            time_to_ready(code, args.tree)  # warm the file cache
            times = [time_to_ready(code, args.tree) for _ in range(max(3, args.runs))]
            print(f"| {kind} | {name} | {min(times):.2f} | {statistics.median(times):.2f} | "
                  f"{max(times):.2f} | {GOALS[kind]} |")


if __name__ == "__main__":
    main()
