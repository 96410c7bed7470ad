"""The quality report of a decoded run: JSON, a short Markdown summary and a PNG plot.

    python -m pipeline.report --config configs/default.yaml [section.key=value ...]

Every number is computed from the files decode wrote: decoded.csv (one row per
distinct title with its measures) and decode_stats.json (samples read, dropped,
and samples/valid per group). The same measures are computed overall and for
every value of each group column (category, number of requested keywords, and
`guided` when the generator wrote it), so two groups can be compared side by side. With the
training text at hand, realism measures (pipeline.report.realism: length against the training titles,
out-of-vocabulary words, near-copies, repeated words) are added, guided and unguided side by
side, overall and per category.
"""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable, Iterator

from pipeline.core.errors import ConfigError, InputError
from pipeline.core.io import write_json, write_text
from pipeline.core.measures import DistinctCounter
from pipeline.core.paths import UNTRAINED_MARKER, RunPaths
from pipeline.report.realism import Reference, realism_by_group, realism_markdown

_FIELD_LIMIT = 2**31 - 1
# CSV columns the measures are broken down by, when the CSV has them.
GROUP_COLUMNS = ("n_keywords", "category", "guided")


def _pct(part: int | float, whole: int | float) -> float | None:
    return round(100 * part / whole, 2) if whole else None


class Measures:
    """Running totals for one group of decoded rows; `result()` gives the measures."""

    def __init__(self) -> None:
        self.rows = 0
        self.rows_with_keywords = 0
        self.coverage_sum = 0.0
        self.all_present = 0
        self.novel = 0
        self.distinct = (DistinctCounter(1), DistinctCounter(2))

    def add(self, row: dict[str, str]) -> None:
        """Count one decoded.csv row (a distinct title)."""
        self.rows += 1
        if row["keyword_coverage"] != "":
            self.rows_with_keywords += 1
            self.coverage_sum += float(row["keyword_coverage"])
            self.all_present += row["all_keywords_present"] == "true"
        self.novel += row["novel"] == "true"
        for counter in self.distinct:
            counter.add(row["title"])

    def result(self, samples: int = 0, valid: int = 0, mean_logprob: float | None = None) -> dict:
        """The measures; `samples`/`valid` and `mean_logprob` come from the decode stats."""
        d1, d2 = (c.value for c in self.distinct)
        return {
            "samples": samples,
            "valid": valid,
            "valid_pct": _pct(valid, samples),
            "rows": self.rows,
            "rows_with_keywords": self.rows_with_keywords,
            "mean_keyword_coverage_pct": _pct(self.coverage_sum, self.rows_with_keywords),
            "all_keywords_present_pct": _pct(self.all_present, self.rows_with_keywords),
            "novel_pct": _pct(self.novel, self.rows),
            "training_copies": self.rows - self.novel,
            "distinct_1": None if d1 is None else round(d1, 4),
            "distinct_2": None if d2 is None else round(d2, 4),
            "mean_logprob": mean_logprob,
        }


def measure_rows(rows: Iterable[dict[str, str]], group_columns: Iterable[str]) -> tuple[Measures, dict]:
    """One pass over decoded rows: the overall Measures and {column: {value: Measures}}."""
    overall = Measures()
    groups: dict[str, dict[str, Measures]] = {c: defaultdict(Measures) for c in group_columns}
    for row in rows:
        overall.add(row)
        for column, by_value in groups.items():
            by_value[row[column]].add(row)
    return overall, groups


def _group_results(measured: dict[str, Measures], counts: dict[str, dict]) -> dict[str, dict]:
    """Measures for every value seen in the CSV or in the stats (a group may have no valid row)."""
    out = {}
    for value in set(measured) | set(counts):
        c = counts.get(value, {})
        out[value] = measured.get(value, Measures()).result(c.get("samples", 0), c.get("valid", 0), c.get("mean_logprob"))
    return out


def _sort_key(column: str):
    if column == "n_keywords":
        return lambda item: int(item[0]) if item[0].isdigit() else -1
    return lambda item: (-item[1]["samples"], item[0])


def _csv_rows(paths: list[Path]) -> tuple[list[str], Iterator[dict[str, str]]]:
    """The header of the first CSV and the rows of all of them, streamed."""
    # Whatever decode wrote must read back: the csv module's default limit is 128 KiB a field
    # (a body section can be longer than that).
    csv.field_size_limit(_FIELD_LIMIT)
    files = [p.open(encoding="utf-8", newline="") for p in paths]
    readers = [csv.DictReader(f) for f in files]

    def rows() -> Iterator[dict[str, str]]:
        try:
            for reader in readers:
                yield from reader
        finally:
            for f in files:
                f.close()

    return list(readers[0].fieldnames or []), rows()


@dataclass(frozen=True)
class ReportConfig:
    """The `report:` section."""

    top_categories: int = 20  # categories shown in the Markdown table and the plot (the JSON has all)

    def __post_init__(self) -> None:
        if self.top_categories < 1:
            raise ConfigError("top_categories: must be at least 1")


def build_report(decoded_csv: Path, rejected_csv: Path, stats: dict) -> dict:
    """The report dict for the rows of `decoded_csv` and the decode `stats`.

    The measures describe what the generator made, so when decode's keyword filter moved
    titles to the rejected file, those rows are measured too; the filter's yield is reported apart.
    """
    if not decoded_csv.is_file():
        raise InputError(f"decoded titles {decoded_csv} do not exist; run `make decode` first")
    paths = [decoded_csv]
    if "keyword_filter" in stats:
        paths.append(rejected_csv)
        if not paths[-1].is_file():
            raise InputError(f"{paths[-1]} (titles the keyword filter rejected) does not exist; run `make decode`")
    header, rows = _csv_rows(paths)
    columns = [c for c in GROUP_COLUMNS if c in header]
    overall, groups = measure_rows(rows, columns)
    report = {
        "inputs": {"decoded": str(decoded_csv), "generated": stats["input"]},
        "dropped": stats["dropped"],
        "kept_unfinished": stats["kept_unfinished"],
        "cut_at_broken_marker": stats.get("cut_at_broken_marker", 0),
        "duplicates": stats["duplicates"],
        "overall": overall.result(stats["samples"], stats["valid"], stats.get("mean_logprob")),
    }
    if "keyword_filter" in stats:
        report["keyword_filter"] = stats["keyword_filter"]
    for column in columns:
        results = _group_results(groups[column], stats["groups"].get(column, {}))
        report[f"by_{column}"] = dict(sorted(results.items(), key=_sort_key(column)))
    return report


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


# Markdown column headers of the per-group tables.
_COLUMNS = {"samples": "samples", "valid_pct": "valid %", "rows": "distinct rows",
            "mean_keyword_coverage_pct": "mean coverage %", "all_keywords_present_pct": "all present %",
            "novel_pct": "novel %", "distinct_1": "distinct-1", "distinct_2": "distinct-2",
            "mean_logprob": "log-prob/token"}


def _table(label: str, by: dict[str, dict], limit: int) -> list[str]:
    keys = list(_COLUMNS)
    header = [label, *_COLUMNS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for value, m in list(by.items())[:limit]:
        lines.append("| " + " | ".join([value or "(none)", *(_fmt(m[k]) for k in keys)]) + " |")
    return lines


UNTRAINED_WARNING = ("**UNTRAINED MODEL: the base model's weights are random** (`{marker}` in the model folder, "
                     "written by `python -m pipeline.train.released`), so these titles and measures test the "
                     "pipeline at the model's shape, not the model. Put the released weights in the model "
                     "folder and retrain for titles worth reading.")


def markdown(report: dict, run: str, top: int) -> str:
    """A short human-readable summary of `report`; at most `top` categories in the category table."""
    o = report["overall"]
    dropped = ", ".join(f"{k} {v}" for k, v in report["dropped"].items()) or "none"
    lines = [
        f"# Quality report: run `{run}`", "",
        *([UNTRAINED_WARNING.format(marker=UNTRAINED_MARKER), ""] if report.get("base_untrained") else []),
        f"{o['samples']} samples generated, {o['valid']} valid ({_fmt(o['valid_pct'])} %); dropped: {dropped}. "
        f"{o['rows']} distinct rows in the CSV ({report['duplicates']} duplicates removed); "
        f"{report.get('cut_at_broken_marker', 0)} titles cut at a broken-off end marker (`<|`).", "",
        "| measure | value |", "|---|---|",
        f"| valid % | {_fmt(o['valid_pct'])} |",
        f"| mean keyword coverage % | {_fmt(o['mean_keyword_coverage_pct'])} |",
        f"| all keywords present % | {_fmt(o['all_keywords_present_pct'])} |",
        f"| novel % (not a training title) | {_fmt(o['novel_pct'])} |",
        f"| distinct-1 / distinct-2 | {_fmt(o['distinct_1'])} / {_fmt(o['distinct_2'])} |",
        f"| mean log-prob per token (fluency) | {_fmt(o['mean_logprob'])} |", "",
        "Coverage, all-present, novelty and distinct-n are over the distinct rows; valid % over all samples; "
        "log-prob is the model's own (before guidance, temperature and truncation), averaged over the "
        "generated tokens of the valid samples.", "",
    ]
    if "keyword_filter" in report:
        lines += _filter_lines(report["keyword_filter"])
    if "by_guided" in report:
        lines += ["## Keyword guidance on and off (same prompts, same seeds)", ""]
        lines += _table("guided", report["by_guided"], len(report["by_guided"])) + [""]
    if "by_n_keywords" in report:
        lines += ["## By number of requested keywords", ""]
        lines += _table("keywords", report["by_n_keywords"], len(report["by_n_keywords"])) + [""]
    if "by_category" in report:
        shown = min(top, len(report["by_category"]))
        lines += [f"## By category ({shown} of {len(report['by_category'])}, most samples first)", ""]
        lines += _table("category", report["by_category"], top) + [""]
    return "\n".join(lines)


def _filter_lines(kf: dict) -> list[str]:
    """The keyword filter's yield, overall and per group."""
    rule = "every requested keyword" if kf["rule"] == "all" else f"at least {kf['min_present']} requested keywords"
    lines = [f"## Keyword filter: titles with {rule}", "",
             "Yield: the valid samples whose title the filter kept.", "",
             "| group | samples kept | samples rejected | yield % | distinct rows kept |", "|---|---|---|---|---|"]
    for key, c in kf.items():
        if isinstance(c, dict):
            lines.append(f"| {key} | {c['samples_kept']} | {c['samples_rejected']} | {_fmt(c['yield_pct'])} "
                         f"| {c['rows_kept']} |")
    return lines + [""]


def realism_report(decoded_csv: Path, rejected_csv: Path, stats: dict, encoded: Path) -> dict:
    """pipeline.report.realism's measures of the decoded titles (and the filter's rejects, as build_report
    counts them) against the training titles of `encoded`, grouped by `guided` when present."""
    paths = [decoded_csv] + ([rejected_csv] if "keyword_filter" in stats else [])
    header, rows = _csv_rows(paths)
    has_guided = "guided" in header
    return realism_by_group(((r["category"], r["guided"] if has_guided else None, r["title"]) for r in rows),
                            Reference.from_encoded(encoded))


def loss_curve(loss_csv: Path, points: int = 200) -> dict | None:
    """Training loss (finetune's running average) at up to `points` steps, and every validation loss,
    from train's `loss.csv`; None when there is none."""
    if not loss_csv.is_file():
        return None
    header, rows = _csv_rows([loss_csv])
    rows = list(rows)
    if not rows:
        return None
    every = max(1, len(rows) // points)
    val = [(int(r["step"]), float(r["val_loss"])) for r in rows if r.get("val_loss")]
    return {"step": [int(r["step"]) for r in rows[::every]], "avg": [float(r["avg"]) for r in rows[::every]],
            "val_step": [s for s, _ in val], "val_loss": [v for _, v in val]}


def write_report(rcfg: ReportConfig, run_name: str, decoded_csv: Path, rejected_csv: Path, stats_path: Path,
                 json_path: Path, markdown_path: Path, plot_path: Path, encoded: Path | None = None,
                 loss_csv: Path | None = None, untrained_marker: Path | None = None) -> dict:
    """Build the report of `decoded_csv` (+ `rejected_csv` when decode filtered) and `stats_path`
    (+ realism against the training text `encoded`, when it exists); write its JSON, Markdown and
    PNG and return it. With the file `untrained_marker` present (the model began as random weights,
    pipeline.train.released) the report says so: `base_untrained` in the JSON, a warning on top of the Markdown."""
    from pipeline.report.plot import plot_report

    if not stats_path.is_file():
        raise InputError(f"decode stats {stats_path} do not exist; run `make decode` first")
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    report = {"run": run_name, "base_untrained": untrained_marker is not None and untrained_marker.is_file(),
              **build_report(decoded_csv, rejected_csv, stats)}
    text = markdown(report, run_name, rcfg.top_categories)
    if encoded is not None and encoded.is_file():
        report["realism"] = realism_report(decoded_csv, rejected_csv, stats, encoded)
        text += "\n".join(["## Do they read like real titles?", "",
                           *realism_markdown(report["realism"], "the training titles (of the same category, "
                                             "per category)", rcfg.top_categories)])
    curve = loss_curve(loss_csv) if loss_csv is not None else None
    if curve is not None:
        report["loss_curve"] = curve
    plot_report(report, rcfg.top_categories, plot_path)
    write_text(markdown_path, text + "\n")
    write_json(json_path, report)
    return report


def run(rcfg: ReportConfig, seed: int, paths: RunPaths) -> str:
    """The stage: `paths.decoded` (+ `paths.decoded_rejected`), `paths.decode_stats` and the training text
    `paths.encoded` (and the loss log in `paths.checkpoint`, when there is one) -> `paths.report_json`,
    `paths.report_md` and `paths.report_png`. Returns the Markdown summary and where the files are."""
    write_report(rcfg, paths.run_dir.name, paths.decoded, paths.decoded_rejected, paths.decode_stats,
                 paths.report_json, paths.report_md, paths.report_png, paths.encoded, paths.checkpoint / "loss.csv",
                 paths.checkpoint / UNTRAINED_MARKER)
    return (paths.report_md.read_text(encoding="utf-8")
            + f"\nreport: {paths.report_json}, {paths.report_md}, {paths.report_png}")

