"""Titles on demand from the shell: one request, printed one title per line (or JSON records).

    python -m pipeline.serve.titles --config configs/default.yaml --category cooking \\
        --keywords "garlic bread, oven" -n 5 [--json] [--seed 7] [--no-guidance] [--temperature 0.9]
"""
from __future__ import annotations

import argparse
import json
import sys

from pipeline.config import load_config
from pipeline.core.errors import ConfigError, InputError
from pipeline.serve.checks import check_request
from pipeline.serve.generator import TitleGenerator, long_lived_tensorflow


def main(argv: list[str]) -> int:
    """The one-shot command; returns the exit status (2 after a one-line error)."""
    long_lived_tensorflow()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--category", default=None, help="subreddit (normalised as encode does)")
    parser.add_argument("--keywords", default="", help="comma-separated keywords")
    parser.add_argument("-n", type=int, default=5, help="how many titles")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same titles (default: random)")
    parser.add_argument("--temperature", type=float, default=None, help="default: generate.temperature")
    parser.add_argument("--no-guidance", action="store_true", help="turn keyword guidance off")
    parser.add_argument("--json", action="store_true", help="one JSON record per line")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_args(argv)
    request = (args.category, args.keywords, args.n, args.seed, not args.no_guidance, args.temperature)
    try:
        cfg = load_config(args.config, args.overrides)
        check_request(cfg.serve, *request)  # a bad value fails before the model loads
        gen = TitleGenerator.from_config(args.config, args.overrides, announce="titles")
        with gen:
            req = gen.request(*request)
            warning = gen.category_warning(req.prompt.category)
            if warning:
                print(f"titles: warning: {warning}", file=sys.stderr)
            records = gen.run([req])[0]
    except (ConfigError, InputError) as exc:
        print(f"titles: error: {exc}", file=sys.stderr)
        return 2
    for r in records:
        print(json.dumps(r.to_dict(), ensure_ascii=False) if args.json else r.title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
