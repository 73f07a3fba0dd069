"""The pieces of `benchmarks/fit_startup.py` that turn a live run into figures: which process is a
rank and which a worker (a real process tree: a launcher, a rank it starts with LOCAL_RANK, a
worker each forks), the memory arithmetic, and the scale.md section written from the results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from first_step_probe import process_tree  # noqa: E402
from fit_startup import memory_figures  # noqa: E402
from scale_report import fit_launches, fit_met  # noqa: E402

LAUNCHER = """
import os, subprocess, sys, time
rank = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env={**os.environ, "LOCAL_RANK": "1"})
if os.fork() == 0:  # the launcher's own worker
    time.sleep(60); os._exit(0)
time.sleep(60)
"""
RANK = """
import os, time
if os.fork() == 0:  # a worker of rank 1: it keeps LOCAL_RANK in its start-up environment
    time.sleep(60); os._exit(0)
time.sleep(60)
"""


@pytest.fixture
def launched_tree():
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_RANK"}
    process = subprocess.Popen([sys.executable, "-c", LAUNCHER, RANK], env=env)
    try:
        deadline = time.time() + 30
        while time.time() < deadline and len(process_tree(process.pid)) < 4:
            time.sleep(0.1)
        yield process.pid
    finally:
        pids = [str(row["pid"]) for row in process_tree(process.pid)]  # before any is gone
        subprocess.run(["kill", "-KILL", *pids], check=False, capture_output=True)
        process.wait()


def test_ranks_and_workers_are_told_apart(launched_tree):
    rows = process_tree(launched_tree)
    ranks = [r for r in rows if r["role"] == "rank"]
    workers = [r for r in rows if r["role"] == "worker"]
    assert len(ranks) == 2 and len(workers) == 2
    assert {r["pid"] for r in ranks} == {r["rank_pid"] for r in ranks}
    assert sorted(w["rank_pid"] for w in workers) == sorted(r["pid"] for r in ranks)
    assert all(r["pss_kb"] > 0 and r["uss_kb"] <= r["rss_kb"] for r in rows)


def test_memory_figures_sum_and_compute_the_node():
    rows = [
        {"pid": 1, "role": "rank", "rank_pid": 1, "pss_kb": 3 * 2**20, "uss_kb": 2**20},
        {"pid": 2, "role": "rank", "rank_pid": 2, "pss_kb": 2 * 2**20, "uss_kb": 2**20},
        {"pid": 3, "role": "worker", "rank_pid": 1, "pss_kb": 2**19, "uss_kb": 2**18},
        {"pid": 4, "role": "worker", "rank_pid": 2, "pss_kb": 2**19, "uss_kb": 2**18},
    ]
    figures = memory_figures(rows)
    assert figures["pss_sum_gb"] == 6.0
    assert figures["uss_sum_gb"] == 2.5
    assert figures["shared_gb"] == 3.5
    assert figures["rank_group_pss_max_gb"] == 3.5  # rank 1 and its worker
    assert figures["node_8x8_computed_gb"] == 3.5 + 8 * 1.0 + 64 * 0.25


def test_fit_figures_are_grouped_by_launch_and_held_to_the_targets():
    row = {
        "fit_2x4_first_s": 300.0,
        "fit_2x4_cold_s": 59.0,
        "fit_2x4_cold_rank_group_pss_max_gb": 3.1,
        "fit_2x4_warm_s": 31.0,
        "fit_2x4_warm_rank_group_pss_max_gb": 2.0,
        "fit_2x4_cold_method": "echo 3 > /proc/sys/vm/drop_caches",
        "startup_s": 14.0,
    }
    launches = fit_launches(row)
    assert set(launches) == {"2x4 first", "2x4 cold", "2x4 warm"}
    assert launches["2x4 cold"] == {"s": 59.0, "rank_group_pss_max_gb": 3.1}
    assert fit_met(row) == {
        "2x4 cold start-up < 60 s": True,
        "2x4 cold rank + its workers < 3 GB PSS": False,
        "2x4 warm start-up < 30 s": False,
        "2x4 warm rank + its workers < 3 GB PSS": True,
    }


def test_scale_md_holds_the_fit_table(tmp_path):
    from scale import _measured_table
    from scale_report import report

    results = tmp_path / "scale.json"
    sim = {"startup_s": 14.0, "startup_rss_gb": 1.3}
    fit = {"fit_2x4_warm_s": 21.5, "fit_2x4_warm_rank_group_pss_max_gb": 1.25}
    results.write_text(json.dumps({"results": {"12000000": {**sim, **fit}}}))
    text = report(results, _measured_table)
    assert "| **start-up total, with sampler (s)** (target < 30) | 14.0 |" in text
    assert "| **command to the end of the first optimiser step (s)** | 21.5 |" in text
    assert "- 2x4 warm start-up < 30 s: met" in text
