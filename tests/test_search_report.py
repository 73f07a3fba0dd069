"""`python benchmarks/search.py --report`: search.md's lines come from search.json's rows, each
with the setting chosen, its recall and the commit that measured it (an HNSW graph added to a row
later names its own)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from search import report  # noqa: E402


def test_each_row_and_index_becomes_a_line_with_its_commit():
    ivf = {
        "build_and_tune_s": 80.1,
        "query_p50_ms": 4.2,
        "query_p99_ms": 9.0,
        "nprobe": 256,
        "nlist": 4000,
        "tuned_recall_at_10_own_vectors": 0.955,
        "recall_at_10_vs_exact": 0.96,
    }
    rows = {
        "text-1000000": {
            "flat": {"build_and_tune_s": 9.0, "query_p50_ms": 170.0, "query_p99_ms": 200.0,
                     "tuned_recall_at_10_own_vectors": 1.0},
            "ivf": ivf,
            "auto": {"kind": "ivf", **ivf},
            "hnsw": {"build_and_tune_s": 900.0, "query_p50_ms": 1.0, "query_p99_ms": 2.0,
                     "ef_search": 64, "tuned_recall_at_10_own_vectors": 0.97,
                     "recall_at_10_vs_exact": 0.98, "written_by": {"commit": "bbbbbbb"}},
            "written_by": {"commit": "aaaaaaa"},
        },
        "demo": {"images": 10},
    }  # fmt: skip
    lines = report(rows).splitlines()
    assert lines[-4:] == [
        "| 1M text | exact | exact | 9.0 s | 170.0 / 200.0 ms | 1.0 / 1.0 | aaaaaaa |",
        "| 1M text | IVF, tuned | 256 of 4000 cells | 80.1 s | 4.2 / 9.0 ms | 0.955 / 0.96 "
        "| aaaaaaa |",
        "| 1M text | HNSW, tuned | efSearch 64 | 900.0 s | 1.0 / 2.0 ms | 0.97 / 0.98 | bbbbbbb |",
        "| 1M text | default (`auto`): **ivf** | 256 of 4000 cells | 80.1 s | 4.2 / 9.0 ms "
        "| 0.955 / 0.96 | aaaaaaa |",
    ]
