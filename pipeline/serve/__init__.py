"""Titles on demand: a trained run answering requests from Python, the shell or HTTP.

    python -m pipeline.serve --config configs/default.yaml               (HTTP API + web page)
    python -m pipeline.serve.titles --config configs/default.yaml --category cooking -n 5

Modules, in the order data flows: checks (one check of a request for every front door),
generator (TitleGenerator: the run loaded once), titles (the one-shot command), batcher
(requests queued and drawn together), api (FastAPI app and its guard; the page in web/). The
`serve:` section is in pipeline.config.
"""
from pipeline.serve.batcher import Batcher, QueueFull
from pipeline.serve.generator import TitleGenerator, TitleRecord, TitleRequest

__all__ = ["Batcher", "QueueFull", "TitleGenerator", "TitleRecord", "TitleRequest"]
