"""The pure sampling loop: prompts in, drawn texts out. No files, no job state, no progress bar.

    loop = SamplingLoop(checkpoint, SamplingSettings(temperature=0.7), length=64, guidance=GuidanceConfig())
    draws, steps = loop.draw(prompts, seed=42)           # one batch, prompts of one token length

The generate stage (a resumable job around it), the benchmarks and the title server all
sample through this one object: the model and its graph are loaded once, and a batch of
prompts of equal token length is drawn with one seed, guided or not.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pipeline.core.format import END_TOKEN
from pipeline.generate.sampler import LogitsHook, Sampler, SamplingSettings

if TYPE_CHECKING:
    from pipeline.generate.guidance import GuidanceConfig, KeywordGuidance
    from pipeline.generate.prompts import Prompt


@dataclass(frozen=True)
class Draw:
    """One sampled text: the prompt and what followed it, up to and including the first end marker.

    finished: the end marker was written; logprob: the model's own mean log-probability per
    generated token (before guidance, temperature and truncation), a fluency measure.
    """

    text: str
    finished: bool
    logprob: float


def cut_at_end(text: str, prompt_chars: int) -> tuple[str, bool]:
    """`text` up to and including the first end marker after the prompt, and whether there was one."""
    pos = text.find(END_TOKEN, prompt_chars)
    if pos < 0:
        return text, False
    return text[: pos + len(END_TOKEN)], True


class SamplingLoop:
    """A trained model and its sampling graph, loaded once, drawing batches on request.

    checkpoint: gpt-2-simple's `checkpoint/<run_name>` folder; settings: temperature and
    truncation; length: the most new tokens per sample; guidance: the `guidance:` section
    (strength 0 builds no hook); threads: TensorFlow threads (0: its default).
    """

    def __init__(self, checkpoint: Path, settings: SamplingSettings, length: int,
                 guidance: GuidanceConfig | None = None, threads: int = 0, candidates: int = 1):
        from gpt_2_simple.src import encoder

        from pipeline.generate.guidance import guidance_for

        self.length = length
        self.candidates = candidates  # best-of-n (pipeline.generate.best_of): samples drawn per requested title
        self._title_lengths: dict | None = None
        enc = encoder.get_encoder(str(checkpoint))  # read once, for the guidance and the sampler
        self.guidance = guidance_for(guidance, checkpoint, enc) if guidance is not None else None
        self.hook = self.graph_hook(self.guidance)
        self.sampler = Sampler(checkpoint, settings, hook=self.hook, threads=threads, enc=enc)

    def graph_hook(self, guidance: KeywordGuidance | None) -> LogitsHook | None:
        """The logits hook the graph is built with: the keyword guidance (or none). A subclass may
        wrap it (pipeline.serve.generator adds a per-draw temperature) and keep everything else."""
        return guidance

    @property
    def guided(self) -> bool:
        """Whether the graph has the keyword guidance hook."""
        return self.guidance is not None

    @property
    def title_lengths(self) -> dict:
        """The training titles' lengths in words per category (pipeline.generate.title_lengths), read once."""
        if self._title_lengths is None:
            from pipeline.generate.title_lengths import training_lengths

            hooked = self.guidance.lengths if self.guidance is not None else None
            self._title_lengths = hooked or training_lengths(self.sampler.model_path, self.sampler.enc)
        return self._title_lengths

    def prompt_tokens(self, prompt: Prompt) -> int:
        """How many tokens `prompt`'s prefix takes (only prompts of one length share a batch)."""
        return len(self.sampler.encode(prompt.prefix))

    def max_new_tokens(self, prompt_tokens: int) -> int:
        """The loop's step limit for prompts of `prompt_tokens` tokens (the context window caps it)."""
        return self.sampler.max_new_tokens(prompt_tokens, self.length)

    def draw(self, prompts: Sequence[Prompt], seed: int, guided: bool = True) -> tuple[list[Draw], int]:
        """One batch: a Draw per prompt (in order) and the loop steps it took.

        prompts: of one token length; seed: the batch's seed (the same seed and prompts give the
        same draws); guided: False samples through the hook with strength 0, which leaves the
        logits exactly as the unguided sampler's.
        """
        tokens = [self.sampler.encode(p.prefix) for p in prompts]
        feed = None
        if self.hook is not None:
            feed = self.hook.feed([p.keywords for p in prompts], strength=None if guided else 0.0,
                                  categories=[p.category for p in prompts], seed=seed)
        phrases = guided and self.guidance is not None and self.guidance.gcfg.phrase_order
        out = self.sampler.sample(tokens, length=self.length, seed=seed, feed=feed, phrases=phrases)
        draws = []
        for prompt, row, logprob in zip(prompts, out.tokens, out.logprob):
            text, finished = cut_at_end(self.sampler.decode(row), len(prompt.prefix))
            draws.append(Draw(text=text, finished=finished, logprob=round(float(logprob), 4)))
        return draws, out.steps

    def close(self) -> None:
        self.sampler.close()

    def __enter__(self) -> SamplingLoop:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
