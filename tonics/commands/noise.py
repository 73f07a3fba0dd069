"""Start-up messages from our dependencies that a user cannot act on, silenced (each explained)."""

from __future__ import annotations

import logging
import warnings


def quiet_known_noise() -> None:
    """Silence start-up messages a user cannot act on (each explained here).

    - "Found N module(s) in eval mode": the frozen encoders are held in eval mode on purpose.
    - lightning's `_pytree` DeprecationWarning: inside Lightning, nothing for a user to change.
    - Lightning's "Tip: ... litlogger" advertisement.
    - LightningCLI's warning that `args` and `sys.argv` are both given: `tonics compare` (and
      the tests) pass each run's arguments on purpose while their own command line is in argv.
    """
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
    warnings.filterwarnings(
        "ignore", category=DeprecationWarning, module=r"lightning\.pytorch\.utilities\._pytree"
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")

    class _NoAdverts(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "litlogger" not in record.getMessage().lower()

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_NoAdverts())
