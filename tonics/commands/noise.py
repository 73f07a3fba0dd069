"""Start-up messages from our dependencies that a user cannot act on, silenced (each explained)."""

from __future__ import annotations

import logging
import warnings


def quiet_known_noise() -> None:
    """Silence start-up messages a user cannot act on (each explained here).

    - "Found N module(s) in eval mode": the frozen encoders are held in eval mode on purpose.
    - lightning's `_pytree` DeprecationWarning: inside Lightning, nothing for a user to change.
    - Lightning's "Tip: ... litlogger" advertisement.
    - "Seed set to N": the run's config.yaml records `seed_everything`; printed before the
      module is built, it would come before a settings error's one line.
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
            message = record.getMessage()
            return "litlogger" not in message.lower() and "Seed set to" not in message

    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning.fabric.utilities.seed",
    ):
        logging.getLogger(name).addFilter(_NoAdverts())
