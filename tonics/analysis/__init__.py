"""Analysis of a finished run's curriculum stages: the figures behind the notebook and
`tonics report` (reads the run directory only; no training code)."""

from tonics.analysis.figures import make_all_figures
from tonics.analysis.run import RunData, load_run

__all__ = ["RunData", "load_run", "make_all_figures"]
