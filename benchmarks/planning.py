"""Wall time of planning the paper's DAG: ``snakemake -n all`` on config/config.yaml.

The raw FaceScrub and CelebA folders are the tiny fake layouts of the tests (tests/fake_raw.py), so
planning runs on any machine; nothing else is needed.

    .venv/bin/python benchmarks/planning.py [--runs 5] [--tree DIR]

``--tree`` plans with another checkout's Snakefile and library (e.g. an older commit).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from fake_raw import make_fake_celeba, make_fake_facescrub  # noqa: E402


def plan_once(tree: Path, configfile: Path, workdir: Path) -> tuple[float, int]:
    """Seconds of one dry run and the number of jobs it planned."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(tree / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(configfile), "-n", "--cores", "16",
               "all"]
    env = {**os.environ, "PYTHONPATH": str(tree / "workflow")}
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-3000:])
    jobs = re.search(r"^total\s+(\d+)$", run.stdout + run.stderr, flags=re.MULTILINE)
    return seconds, int(jobs.group(1)) if jobs else -1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout to plan with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        for name, make in (("facescrub", make_fake_facescrub), ("celeba", make_fake_celeba)):
            config["datasets"][name]["raw_dir"] = str(make(tmp / "raw" / name))
        configfile = tmp / "paper.yaml"
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
        plan_once(args.tree, configfile, tmp)  # warm the file cache
        results = [plan_once(args.tree, configfile, tmp) for _ in range(max(3, args.runs))]
    times = [seconds for seconds, _ in results]
    load = os.getloadavg()
    print(f"`.venv/bin/python {' '.join(sys.argv)}` on {platform.node()} ({os.cpu_count()} cores, "
          f"Python {platform.python_version()}), load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}\n")
    print("| jobs | runs | min s | median s | max s | goal s |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {results[0][1]} | {len(times)} | {min(times):.2f} | {statistics.median(times):.2f} | "
          f"{max(times):.2f} | 3.0 |")


if __name__ == "__main__":
    main()
