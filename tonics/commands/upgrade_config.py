"""`tonics upgrade-config OLD.yaml [-o NEW.yaml]`: a config written with the flat keys of before
the grouping (`model.lr`, `data.batch_size`, `data.stages[i].unfreeze_vision`), rewritten with
every key in its group (`tonics.train.old_keys`), so a user's configs move in one step instead of
one error at a time. Comments are not kept (the YAML is read and written as data)."""

from __future__ import annotations

from tonics.commands.parsing import CommandParser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    parser = CommandParser("upgrade-config")
    parser.add_argument("config", help="a tonics fit YAML with flat keys")
    parser.add_argument("-o", "--out", help="write the grouped YAML here (default: stdout)")
    args = parser.parse_args(argv)
    import sys
    from pathlib import Path

    import yaml

    from tonics.errors import InputError
    from tonics.train.old_keys import grouped_config

    path = Path(args.config)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror}); give a YAML config") from err
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not YAML ({type(err).__name__}); give a YAML config") from err
    if not isinstance(config, dict) or not set(config) & {"model", "data", "trainer"}:
        raise InputError(
            f"{path}: not a tonics fit config (no model, data or trainer section); give the YAML "
            "you pass to tonics fit --config"
        )
    grouped = grouped_config(config)
    text = yaml.safe_dump(grouped, sort_keys=False)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    note = "every key already in its group" if grouped == config else "flat keys moved to groups"
    print(f"{path}: {note}{f'; written to {args.out}' if args.out else ''}", file=sys.stderr)
    return 0
