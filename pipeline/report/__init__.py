"""The quality report of a decoded run: JSON, Markdown and a PNG plot.

    python -m pipeline.report --config configs/default.yaml

Modules, in the order data flows: realism (do titles look like real ones of their category),
plot (the picture), stage (`run`: decoded.csv + stats -> report.json, report.md, report.png).
"""
from pipeline.report.realism import Realism, Reference, realism_by_group, realism_markdown, training_pairs
from pipeline.report.stage import ReportConfig, run

__all__ = ["Realism", "Reference", "ReportConfig", "realism_by_group", "realism_markdown", "run", "training_pairs"]
