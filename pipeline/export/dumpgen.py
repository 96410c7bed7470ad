"""Synthetic monthly submission dumps, shaped like the Pushshift ones, for examples and benchmarks.

    python -m pipeline.export.dumpgen data/dumps/synthetic/RS_2019-08.zst --rows 30000 [--seed 0]

The month comes from the file name (`RS_YYYY-MM.<zst|parquet|ndjson>`); `.zst` is written
with the 2 GiB window real dumps use. Subreddit sizes follow a Zipf law; the dump holds
what the export must cope with: NSFW subreddits and stray NSFW posts, the default
excluded subreddits (in mixed case too), HTML entities, U+FFFD, deleted authors, tied
scores, small subreddits and the other fields a real record carries. The same rows and
seed give the same file.
"""
from __future__ import annotations

import argparse
import calendar
import random
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_path
from pipeline.export.dumps import write_parquet, write_zst_ndjson

_WORDS = (
    "cat dog game movie first today finally my new old best worst help question story time year "
    "friend home work city night morning coffee pizza book song band photo picture art build "
    "car bike garden plant fish bird tree river mountain beach rain snow winter summer week "
    "anyone does what why how look found made after before never always little big small "
    "weird funny strange favorite thought idea advice update progress finished started "
    "learned tried bought sold lost won broke fixed painted cooked baked drew wrote played"
).split()
_EXTRAS = ("&amp;", "&lt;3", "-&gt;", "&amp;lt;b&amp;gt;", "\ufffd", "R&amp;D")
EXCLUDED = ("me_irl", "2meirl4meirl", "anime_irl", "furry_irl", "cursedimages", "Me_Irl")
_MONTH = re.compile(r"RS_(\d{4})-(\d{2})")


def month_bounds(path: Path) -> tuple[int, int]:
    """(first second, seconds in month) of the month named by `path` (`RS_YYYY-MM.*`)."""
    m = _MONTH.match(path.name)
    if not m:
        raise InputError(f"{path}: name it RS_YYYY-MM.<zst|parquet|ndjson> so the month is known")
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise InputError(f"{path}: {month} is not a month")
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    return int(start.timestamp()), calendar.monthrange(year, month)[1] * 86_400


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def generate_records(rows: int, seed: int, start_utc: int, span_s: int) -> Iterator[dict]:
    """`rows` submission records created in [start_utc, start_utc + span_s), drawn with `seed`."""
    rng = random.Random(seed)
    n_subs = max(40, rows // 150)
    subs = [f"{rng.choice(_WORDS)}{rng.choice(_WORDS).capitalize()}{i}" for i in range(n_subs)]
    # Popular names first; the excluded ones are popular in real data, so they sit near the top.
    for i, name in enumerate(EXCLUDED):
        subs[1 + 2 * i] = name
    nsfw_subs = set(subs[3::17])
    sub_ids = {name: f"t5_{_base36(0x1000 + i)}" for i, name in enumerate(subs)}
    weights, total = [], 0.0
    for rank in range(1, n_subs + 1):
        total += 1.0 / rank**1.05
        weights.append(total)
    authors = [f"user_{_base36(rng.getrandbits(40))}" for _ in range(max(50, rows // 4))] + ["[deleted]"] * 10
    base_id = rng.getrandbits(32)
    for i in range(rows):
        sub = rng.choices(subs, cum_weights=weights)[0]
        words = rng.choices(_WORDS, k=rng.randint(3, 12))
        if rng.random() < 0.08:
            words.insert(rng.randrange(len(words) + 1), rng.choice(_EXTRAS))
        title = " ".join(words).capitalize() + rng.choice(("", "?", "!", "."))
        # Most posts score nothing, a few a great deal; small integers repeat, so ties are common.
        score = min(int(rng.paretovariate(0.9)) - 1, 150_000)
        post_id = _base36(base_id + i)
        is_self = rng.random() < 0.4
        yield {
            "id": post_id,
            "subreddit": sub,
            "subreddit_id": sub_ids[sub],
            "title": title,
            "author": rng.choice(authors),
            "score": score,
            "num_comments": int(score * rng.random() * 0.3),
            "over_18": sub in nsfw_subs or rng.random() < 0.02,
            "created_utc": start_utc + rng.randrange(span_s),
            "retrieved_on": start_utc + span_s + rng.randrange(86_400 * 30),
            "is_self": is_self,
            "selftext": " ".join(rng.choices(_WORDS, k=rng.randint(0, 40))) if is_self else "",
            "url": f"https://www.reddit.com/r/{sub}/comments/{post_id}/" if is_self
            else f"https://i.example.com/{post_id}.jpg",
            "domain": f"self.{sub}" if is_self else "i.example.com",
            "permalink": f"/r/{sub}/comments/{post_id}/",
            "stickied": False,
            "gilded": 0,
            "author_flair_text": None,
            "link_flair_text": rng.choice((None, None, "Discussion", "OC", "Question")),
        }


def write_dump(path: Path, rows: int, seed: int) -> int:
    """Write a synthetic dump of `rows` records to `path` (format from the suffix); returns rows."""
    start, span = month_bounds(path)
    # Each month differs but stays reproducible: the seed is mixed with the month's start.
    records = generate_records(rows, seed * 1_000_003 + start, start, span)
    if path.suffix == ".zst":
        return write_zst_ndjson(path, records)
    if path.suffix == ".parquet":
        return write_parquet(path, records)
    if path.suffix in (".ndjson", ".jsonl"):
        import json

        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return rows
    raise InputError(f"{path}: unknown dump format; use .zst, .parquet, .ndjson or .jsonl")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="RS_YYYY-MM.zst, .parquet, .ndjson or .jsonl")
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        n = write_dump(args.out, args.rows, args.seed)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"dumpgen: {n} submissions -> {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
