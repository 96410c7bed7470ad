"""Titles on demand: a trained run loaded once, answering requests (the one-shot command is
pipeline.serve.titles, the HTTP API pipeline.serve.api).

    TitleGenerator.from_config("configs/default.yaml").titles("cooking", ["garlic bread"], n=5, seed=7)

Only the run's checkpoint and encoded training text (for the trained categories) are read;
the bulk outputs are never touched. Categories and keywords are normalised as encode does;
sampling goes through pipeline.generate.sampling.SamplingLoop (one graph, loaded once). See docs/serving.md.

Seeds: the sampler keys its randomness by one seed per batch and a row's position in it, so
a request with a seed is always drawn on its own (rows 0..n-1, that seed) and gives the same
titles whatever else is asked at the same time; requests without a seed may share a batch
(the title server batches them, pipeline.serve.batcher) under a fresh random seed.
"""
from __future__ import annotations

import difflib
import os
import secrets
import threading
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pipeline.config import Config, ServeConfig, load_config
from pipeline.core.device import load_tensorflow
from pipeline.core.errors import InputError
from pipeline.core.format import parse
from pipeline.core.measures import coverage, words
from pipeline.decode import finished_title
from pipeline.generate import Prompt, SamplingLoop
from pipeline.serve.checks import MAX_SEED, check_request

if TYPE_CHECKING:
    from pipeline.generate import GuidanceConfig, SamplingSettings


@dataclass(frozen=True)
class TitleRecord:
    """One generated title.

    keywords: the requested keywords, normalised; keywords_present / keywords_missing: which of
    them the title contains as written (ignoring case); logprob: the model's own mean
    log-probability per generated token (higher is more fluent); finished: the model ended the
    title itself (False: it was cut at the length limit).
    """

    title: str
    keywords: tuple[str, ...]
    keywords_present: tuple[str, ...]
    keywords_missing: tuple[str, ...]
    logprob: float
    finished: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TitleRequest:
    """One normalised request: the prompt (its `count` is n), seed (None: any), guided, temperature (None: config's)."""

    prompt: Prompt
    seed: int | None = None
    guided: bool = True
    temperature: float | None = None


class _TemperatureHook:
    """A logits hook that multiplies the logits by a per-batch scale (default exactly 1.0).

    The sampler divides by the config's temperature T0 after the hook, so a scale of T0/T
    samples at temperature T; with the default scale the logits are left bit for bit as they
    were. Wraps the keyword guidance hook (or none) and forwards its state and feed.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.scale = 1.0  # set by the caller before each draw (draws are serialised by a lock)
        self._scale_in = None

    def initial_state(self, batch_size) -> tuple:
        import numpy as np
        import tensorflow as tf

        self._scale_in = tf.compat.v1.placeholder_with_default(np.float32(1.0), [], name="temperature_scale")
        return tuple(self.inner.initial_state(batch_size)) if self.inner is not None else ()

    def state_shapes(self) -> tuple:
        return tuple(self.inner.state_shapes()) if self.inner is not None else ()

    def step(self, logits, state, tokens, done):
        if self.inner is not None:
            logits, state = self.inner.step(logits, state, tokens, done)
        return logits * self._scale_in, state

    def feed(self, keyword_lists, strength=None, **more) -> dict:
        feed = self.inner.feed(keyword_lists, strength, **more) if self.inner is not None else {}
        feed[self._scale_in] = float(self.scale)
        return feed


class _Loop(SamplingLoop):
    """SamplingLoop whose graph also takes a temperature per draw (through _TemperatureHook)."""

    def graph_hook(self, guidance):
        return _TemperatureHook(guidance)


def read_categories(encoded: Path) -> dict[str, int]:
    """Trained category -> number of distinct titles in the encoded training text, most titles first."""
    if not encoded.is_file():
        return {}
    seen: dict[str, set[int]] = defaultdict(set)
    with encoded.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            doc = parse(line).document
            if doc.category is not None:
                seen[doc.category].add(hash(doc.title))
    return dict(sorted(((c, len(t)) for c, t in seen.items()), key=lambda kv: (-kv[1], kv[0])))


class TitleGenerator:
    """A trained run loaded once, answering title requests.

    checkpoint: the trained model folder (RunPaths.checkpoint); encoded: the run's training text
    (for the trained categories); sampling, length, threads: as the `generate:` section;
    guidance: the `guidance:` section (strength 0: no guidance); limits: what one request may ask
    for (the `serve:` section's; the same for the Python API, the command and HTTP).
    """

    def __init__(self, checkpoint: Path, encoded: Path, sampling: SamplingSettings, length: int,
                 guidance: GuidanceConfig | None = None, threads: int = 0, limits: ServeConfig = ServeConfig()):
        self.limits = limits
        self.checkpoint = Path(checkpoint)
        self.encoded = Path(encoded)
        self.temperature = sampling.temperature
        self.loop = _Loop(self.checkpoint, sampling, length, guidance, threads=threads)
        self._lock = threading.Lock()
        self._categories: dict[str, int] | None = None

    @classmethod
    def from_config(cls, config: str | Path | Config, overrides: Sequence[str] = (),
                    announce: str | None = None) -> TitleGenerator:
        """The generator of a run: `config` is a config file (with `overrides`) or a loaded Config.

        Raises InputError naming the command to train the run when it is not trained yet. announce:
        a command's name, to print its one line on TensorFlow's devices as the model loads.
        """
        if isinstance(config, (str, Path)):
            where, cfg = str(config), load_config(config, list(overrides))
        else:
            where, cfg = f"configs/{config.name}.yaml", config
        paths = cfg.paths
        if not paths.train_done.is_file() or not paths.checkpoint.is_dir():
            raise InputError(f"run '{cfg.name}' is not trained yet ({paths.train_done} is missing); "
                             f"train it with `make encode train CONFIG={where}`")
        load_tensorflow(announce or "titles", announce=announce is not None)
        return cls(paths.checkpoint, paths.encoded, cfg.generate.sampling, cfg.generate.length,
                   cfg.guidance, threads=cfg.generate.threads, limits=cfg.serve)

    @property
    def categories(self) -> dict[str, int]:
        """Trained category -> distinct training titles (read once, on first use)."""
        if self._categories is None:
            self._categories = read_categories(self.encoded)
        return self._categories

    def category_warning(self, category: str | None) -> str | None:
        """None when `category` (normalised) was trained; otherwise a warning naming the closest trained ones."""
        known = self.categories
        if category is None or not known or category in known:
            return None
        close = difflib.get_close_matches(category, list(known), n=3, cutoff=0.4) or list(known)[:3]
        return f"category '{category}' is not in the training text; closest trained categories: {', '.join(close)}"

    @property
    def prompt_budget(self) -> int:
        """The most tokens a prompt may take: the model's context less the title's `generate.length`."""
        return self.loop.sampler.hparams.n_ctx - self.loop.length

    def request(self, category: str | None, keywords: Sequence[str] | str | None = (), n: int = 5,
                seed: int | None = None, guided: bool = True, temperature: float | None = None) -> TitleRequest:
        """A normalised TitleRequest (pipeline.serve.checks, then the context window); InputError naming
        the field on a bad value."""
        prompt, seed, guided, temperature = check_request(self.limits, category, keywords, n, seed, guided,
                                                          temperature)
        tokens = self.loop.prompt_tokens(prompt)
        if tokens > self.prompt_budget:
            bare = self.loop.prompt_tokens(Prompt(prompt.category, (), prompt.count))
            field = "keywords" if prompt.keywords and bare <= self.prompt_budget else "category"
            raise InputError(f"{field}: the prompt takes {tokens} tokens; this model leaves {self.prompt_budget} for "
                             f"it ({self.loop.sampler.hparams.n_ctx} of context less generate.length "
                             f"{self.loop.length})")
        return TitleRequest(prompt, seed, guided, temperature)

    def titles(self, category: str | None, keywords: Sequence[str] | str | None = (), n: int = 5, seed: int | None = None,
               guided: bool = True, temperature: float | None = None) -> list[TitleRecord]:
        """n titles for `category` mentioning `keywords` (a list, or one comma-separated string).

        seed: the same seed and arguments give the same titles; guided: False turns keyword
        guidance off for this call; temperature: None keeps the config's.
        """
        return self.run([self.request(category, keywords, n, seed, guided, temperature)])[0]

    def run(self, requests: Sequence[TitleRequest], max_rows: int = 64) -> list[list[TitleRecord]]:
        """The titles of each request, in order, drawing requests without a seed together.

        Requests without a seed whose prompts have the same token length, guidance and
        temperature share draws of at most `max_rows` rows; a request with a seed is drawn alone.
        """
        with self._lock:
            results: list[list[TitleRecord] | None] = [None] * len(requests)
            for seed, members in self._plan(requests, max_rows):
                first = requests[members[0]]
                prompts = [requests[i].prompt for i in members for _ in range(requests[i].prompt.count)]
                temperature = first.temperature or self.temperature
                self.loop.hook.scale = self.temperature / temperature
                draws, _ = self.loop.draw(prompts, seed=seed, guided=first.guided)
                at = 0
                for i in members:
                    count = requests[i].prompt.count
                    results[i] = [self._record(requests[i].prompt, d) for d in draws[at: at + count]]
                    at += count
            return results  # type: ignore[return-value]

    def _plan(self, requests: Sequence[TitleRequest], max_rows: int) -> list[tuple[int, list[int]]]:
        """(seed, request indices) of each draw."""
        draws: list[tuple[int, list[int]]] = []
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            if req.seed is not None:
                draws.append((req.seed, [i]))
            else:
                key = (self.loop.prompt_tokens(req.prompt), req.guided, req.temperature or self.temperature)
                groups[key].append(i)
        for members in groups.values():
            chunk: list[int] = []
            for i in members:
                if chunk and sum(requests[j].prompt.count for j in chunk) + requests[i].prompt.count > max_rows:
                    draws.append((secrets.randbelow(MAX_SEED), chunk))
                    chunk = []
                chunk.append(i)
            draws.append((secrets.randbelow(MAX_SEED), chunk))
        return draws

    @staticmethod
    def _record(prompt: Prompt, draw) -> TitleRecord:
        title, _ = finished_title(draw.text, draw.finished)
        cov = coverage(prompt.keywords, words(title))
        return TitleRecord(title, prompt.keywords, cov.present, cov.missing, draw.logprob, draw.finished)

    def close(self) -> None:
        self.loop.close()

    def __enter__(self) -> TitleGenerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def long_lived_tensorflow() -> None:
    """TensorFlow's oneDNN ops off unless the user chose (before TensorFlow loads): with them on, the
    server's RSS grew 8-17 % over 640-1,600 requests, off under 2 %; the one-shot command matches it."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
