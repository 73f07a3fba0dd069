"""Paired comparisons of two training recipes over the same seeds: the mean of each arm, the mean
paired difference (b - a) and its 95% interval, from a Student t interval and a percentile
bootstrap over seeds (scipy). Pairing by seed removes the seed-to-seed variation both arms share
(data order, head initialisation), which is most of it on small data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass
class PairedDifference:
    """Arm means, the mean paired difference b - a, and its t and bootstrap intervals."""

    n: int
    mean_a: float
    mean_b: float
    difference: float
    t_low: float
    t_high: float
    bootstrap_low: float
    bootstrap_high: float

    def as_dict(self, digits: int = 3) -> dict[str, float]:
        """Rounded values, for JSON lines and tables."""
        return {
            k: (round(v, digits) if isinstance(v, float) else v) for k, v in asdict(self).items()
        }

    def cell(self) -> str:
        """'+1.23 [+0.40, +2.05]' (t interval), for Markdown tables."""
        return f"{self.difference:+.2f} [{self.t_low:+.2f}, {self.t_high:+.2f}]"


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
) -> PairedDifference:
    """Compare arm b with arm a, seed by seed (a[i] and b[i] share seed i)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(
            f"need two equal-length lists of >= 2 paired values, got {len(x)} and {len(y)}"
        )
    diff = y - x
    mean = float(diff.mean())
    if np.allclose(diff, diff[0]):
        low = high = boot_low = boot_high = mean
    else:
        half = float(stats.t.ppf(0.5 + confidence / 2, len(diff) - 1) * stats.sem(diff))
        low, high = mean - half, mean + half
        boot = stats.bootstrap(
            (diff,),
            np.mean,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
        boot_low, boot_high = (
            float(boot.confidence_interval.low),
            float(boot.confidence_interval.high),
        )
    return PairedDifference(
        len(diff), float(x.mean()), float(y.mean()), mean, low, high, boot_low, boot_high
    )
