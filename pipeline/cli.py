"""The command line every stage shares: `--config FILE` plus `section.key=value` overrides."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable

from pipeline.errors import ConfigError, InputError

if TYPE_CHECKING:
    from pipeline.config import Config


def run_stage(name: str, doc: str, argv: list[str], stage: Callable[["Config"], str],
              errors: tuple[type[Exception], ...] = ()) -> int:
    """Load the config named on the command line, run `stage(cfg)` and print the line it returns.

    name: the stage, prefixed to error messages; doc: the module docstring (its first line is
    the help text); errors: more exception types reported like config and input errors.
    Returns the exit status: 0, or 2 after printing the error.
    """
    from pipeline.config import load_config

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_args(argv)
    try:
        summary = stage(load_config(args.config, args.overrides))
    except (ConfigError, InputError, *errors) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0
