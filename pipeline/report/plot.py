"""The report's picture: keyword coverage with guidance on and off (when compared), by number of
requested keywords and by category, and title lengths against the training titles (with realism)."""
from __future__ import annotations

from pathlib import Path

from pipeline.core.io import atomic_path

# How the `guided` column's values are labelled in the picture.
_GUIDED = {"true": "guided", "false": "unguided"}


def _bars(ax, labels: list[str], series: dict[str, list[float | None]], horizontal: bool) -> None:
    """Grouped bars, one group per label and one bar per series; a missing value draws no bar."""
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        positions = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        heights = [0.0 if v is None else v for v in values]
        (ax.barh if horizontal else ax.bar)(positions, heights, width, label=name)
    ticks = range(len(labels))
    if horizontal:
        ax.set_yticks(list(ticks), labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of distinct titles")
    else:
        ax.set_xticks(list(ticks), labels)
        ax.set_ylim(0, 100)
        ax.set_ylabel("% of distinct titles")


def _length_panel(ax, realism: dict) -> None:
    """Title length histograms (share of titles per length in words): the reference titles and each group."""
    curves = {"training titles": realism["reference_histogram"]}
    curves.update({_GUIDED.get(g, g): m["length_histogram"] for g, m in realism["overall"].items()})
    for name, hist in curves.items():
        hist = {int(k): v for k, v in hist.items()}
        total = sum(hist.values()) or 1
        xs = range(0, max(hist, default=0) + 2)
        ax.step(list(xs), [100 * hist.get(x, 0) / total for x in xs], where="mid", label=name)
    ax.set_title("Title length", fontsize="medium")
    ax.set_xlabel("words")
    ax.set_ylabel("% of titles")
    ax.legend(fontsize="small")


def _loss_panel(ax, curve: dict) -> None:
    """Training loss (running average) and validation loss by step."""
    ax.plot(curve["step"], curve["avg"], label="training (running average)")
    if curve["val_step"]:
        ax.plot(curve["val_step"], curve["val_loss"], marker="o", label="validation")
    ax.set_title("Training", fontsize="medium")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")


def plot_report(report: dict, top: int, path: Path) -> None:
    """Write a PNG of the report's coverage breakdowns to `path` (atomically); `top` categories at most."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_n = {k: v for k, v in report.get("by_n_keywords", {}).items() if v["rows_with_keywords"]}
    by_cat = dict(list(report.get("by_category", {}).items())[:top])
    panels = [(by_n, False, "Coverage by number of requested keywords", "requested keywords"),
              (by_cat, True, f"Coverage by category ({len(by_cat)} with most samples)", None)]
    if "by_guided" in report:
        # The other panels mix guided and unguided titles; this one tells them apart.
        by_guided = {_GUIDED.get(k, k): v for k, v in report["by_guided"].items()}
        panels.insert(0, (by_guided, False, "Keyword guidance on and off", None))
    realism, curve = report.get("realism"), report.get("loss_curve")
    extra = bool(realism) + bool(curve)
    fig, axes = plt.subplots(1, len(panels) + extra,
                             figsize=(6 * (len(panels) + extra), max(4.0, 0.3 * len(by_cat) + 1.5)))
    if realism:
        _length_panel(axes[len(panels)], realism)
    if curve:
        _loss_panel(axes[-1], curve)
    for ax, (by, horizontal, title, xlabel) in zip(axes, panels):
        ax.set_title(title, fontsize="medium")
        if not by:
            ax.text(0.5, 0.5, "no decoded titles with keywords", ha="center", va="center", transform=ax.transAxes)
            continue
        series = {name: [m[key] for m in by.values()] for name, key in (
            ("mean keyword coverage", "mean_keyword_coverage_pct"),
            ("all keywords present", "all_keywords_present_pct"))}
        _bars(ax, [k or "(none)" for k in by], series, horizontal)
        if xlabel:
            ax.set_xlabel(xlabel)
    untrained = " (UNTRAINED MODEL: random weights)" if report.get("base_untrained") else ""
    fig.suptitle(f"Run {report.get('run', '')}: {report['overall']['rows']} distinct titles{untrained}",
                 color="red" if untrained else None)
    handles, labels = next((ax.get_legend_handles_labels() for ax in axes if ax.patches), ([], []))
    if handles:
        # One legend below both panels, where it cannot hide a bar.
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize="small")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
