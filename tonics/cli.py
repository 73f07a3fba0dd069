"""The `tonics` command: the entry point of the console script.

  tonics fit --config configs/demo.yaml          train (LightningCLI; also validate/test/predict)
  tonics ontology build|stats --demo             the WordNet object ontology of a dataset
  tonics export CKPT OUT                          a model that loads without the training code
  tonics retrieval --model OUT --demo             retrieval figures of an exported model
  tonics compare A.yaml B.yaml --seeds 0 1 2 3 4   paired-seed comparison of recipes

`tonics --help` lists every command (`tonics.commands`); a configuration or data error is one
line on stderr with exit code 2 (`TONICS_DEBUG=1` for the traceback).
"""

from __future__ import annotations

import logging
import os
import sys

from tonics.commands import BY_NAME, help_text, run


def cli_main(args: list[str] | None = None) -> None:
    """Entry point of the `tonics` console script (`args` None: the process's arguments)."""
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(help_text())
        return
    if argv[0] not in BY_NAME:
        print(f"tonics: unknown command '{argv[0]}'; `tonics --help` lists them", file=sys.stderr)
        raise SystemExit(2)
    from tonics.commands.errors import kind_of, one_line, user_errors
    from tonics.commands.noise import quiet_known_noise

    if BY_NAME[argv[0]].lightning:  # before our handler: Lightning then keeps its own log format
        import lightning.pytorch  # noqa: F401
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_known_noise()
    try:
        code = run(argv[0], None if args is None and BY_NAME[argv[0]].lightning else argv[1:])
    except Exception as err:
        if os.environ.get("TONICS_DEBUG") or not isinstance(err, user_errors()):
            raise
        message = f"tonics: {kind_of(err)} error: {one_line(err)} (TONICS_DEBUG=1 for a traceback)"
        print(message, file=sys.stderr)
        raise SystemExit(2) from None
    sys.stdout.flush()
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    cli_main()
