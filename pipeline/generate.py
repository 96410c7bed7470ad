"""Stage 3, generate: bulk generation conditioned on category and keywords.

    python -m pipeline.generate --config configs/default.yaml [generate.batch_size=32 ...]

Every sample of the job gets an index (prompts in order, `count` samples each). The
samples are planned into batches once, deterministically: prompts whose prefixes
have the same number of tokens share batches, so no padding is ever needed. The
model and its sampling graph are loaded once (pipeline.sampler). Records are
appended to `<generated>.partial` after every batch; a re-run with the same job
(same config, prompts and checkpoint) skips the indices already there, and a
different job starts over. When every index is written the records are sorted by
index and renamed onto the output, so make never sees a half-done file.

With keyword guidance on (`guidance.strength` > 0, pipeline.guidance) every batch is
sampled guided and, when `guidance.compare` is set, again unguided with the same seed;
the unguided copies take the indices after the guided ones, and each record says which
it is in `guided`. Every record carries `logprob`, the model's own mean log-probability
per generated token, as a fluency measure.
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli import run_stage
from pipeline.errors import ConfigError
from pipeline.io import write_json
from pipeline.jobfile import Batch, JobFile, guidance_passes, job_fingerprint, plan_batches
from pipeline.prompts import Prompt, load_prompts

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.guidance import KeywordGuidance
    from pipeline.sampler import Sampler

# Names of a batch's pass (Batch.guided) in the stats.
_PASS_NAMES = {None: "plain", True: "guided", False: "unguided"}


@dataclass(frozen=True)
class GenerateConfig:
    """The `generate:` section.

    prompts_file: YAML or CSV rows of category, keywords, count (see pipeline.prompts); when
    null, the cross product of `categories` and `keyword_sets`, `count` samples each.
    length: the most new tokens per sample (a batch stops earlier once every sample ended).
    top_k 0 / top_p 0 turn that truncation off; both may be set (top-k applies first).
    seed: None uses the top-level seed; batch b uses seed + b.
    """

    prompts_file: str | None = "data/prompts.yaml"
    categories: tuple[str, ...] = ()
    keyword_sets: tuple[tuple[str, ...], ...] = ()
    count: int = 1
    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 0.9
    length: int = 64
    batch_size: int = 16
    seed: int | None = None
    threads: int = 0

    def __post_init__(self) -> None:
        if self.prompts_file and (self.categories or self.keyword_sets):
            raise ConfigError("prompts_file: give either a prompts file or categories/keyword_sets, not both "
                              "(set generate.prompts_file=null to use the cross product)")
        if not self.prompts_file and not (self.categories or self.keyword_sets):
            raise ConfigError("prompts_file: no prompts; set prompts_file or categories/keyword_sets")
        if self.temperature <= 0:
            raise ConfigError(f"temperature: must be positive, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"top_k: must be 0 (off) or more, got {self.top_k}")
        if not 0.0 <= self.top_p <= 1.0:
            raise ConfigError(f"top_p: must be between 0 and 1, got {self.top_p}")
        for key in ("count", "length", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if self.threads < 0:
            raise ConfigError(f"threads: must be 0 (TensorFlow's default) or more, got {self.threads}")


def run_batch(sampler: Sampler, batch: Batch, prompts: list[Prompt], length: int,
              guidance: KeywordGuidance | None = None) -> tuple[list[dict], int]:
    """Sample one planned batch; returns its records (schema of the generated file) and the loop's steps.

    guidance: the sampler's hook, when it has one; an unguided batch (`batch.guided` False) runs
    through it with strength 0, which leaves the logits untouched.
    """
    from pipeline.sampler import cut_at_end

    rows = [prompts[p] for p in batch.prompt_ids]
    tokens = [sampler.encode(p.prefix) for p in rows]
    feed = None
    if guidance is not None:
        feed = guidance.feed([p.keywords for p in rows], strength=None if batch.guided else 0.0)
    out = sampler.sample(tokens, length=length, seed=batch.seed, feed=feed)
    records = []
    for index, prompt, row_tokens, logprob in zip(batch.indices, rows, out.tokens, out.logprob):
        text, finished = cut_at_end(sampler.decode(row_tokens), len(prompt.prefix))
        record = {"index": index, "category": prompt.category, "keywords": list(prompt.keywords),
                  "seed": batch.seed, "text": text, "finished": finished, "logprob": round(float(logprob), 4)}
        if batch.guided is not None:
            record["guided"] = batch.guided
        records.append(record)
    return records, out.steps


def generate(cfg: Config, checkpoint: Path, out_path: Path) -> dict:
    """Generate every planned sample from the model in `checkpoint` into JSON Lines `out_path`.

    checkpoint: gpt-2-simple's `checkpoint_dir/run_name` folder. Returns the job's stats
    (also written beside the output as generate_stats.json).
    """
    from tqdm import tqdm

    from pipeline.guidance import guidance_for
    from pipeline.sampler import Sampler, SamplingSettings

    g = cfg.generate
    seed = cfg.seed if g.seed is None else g.seed
    prompts = load_prompts(g)
    started = time.time()
    settings = SamplingSettings(temperature=g.temperature, top_k=g.top_k, top_p=g.top_p)
    guidance = guidance_for(cfg.guidance, checkpoint)
    with Sampler(checkpoint, settings, hook=guidance, threads=g.threads) as sampler:
        prompt_lens = [len(sampler.encode(p.prefix)) for p in prompts]
        batches = plan_batches(prompts, prompt_lens, g.batch_size, seed)
        total = sum(p.count for p in prompts)
        if guidance is not None:
            batches = guidance_passes(batches, total, cfg.guidance.compare)
            total *= 2 if cfg.guidance.compare else 1
        job = JobFile(out_path, job_fingerprint(cfg, prompts, checkpoint))
        done = job.open()
        steps_run = steps_max = finished = made = 0
        # Per pass (guided / unguided / plain): samples, finished titles and seconds made this run.
        passes: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        with tqdm(total=total, initial=len(done), unit="sample", desc="generate") as bar:
            for batch in batches:
                if all(i in done for i in batch.indices):
                    continue
                batch_start = time.perf_counter()
                records, steps = run_batch(sampler, batch, prompts, g.length, guidance)
                records = [r for r in records if r["index"] not in done]
                job.append(records)
                tally = passes[_PASS_NAMES[batch.guided]]
                tally[0] += len(records)
                tally[1] += sum(r["finished"] for r in records)
                tally[2] += time.perf_counter() - batch_start
                steps_run += steps
                steps_max += sampler.max_new_tokens(prompt_lens[batch.prompt_ids[0]], g.length)
                finished += sum(r["finished"] for r in records)
                made += len(records)
                bar.update(len(records))
                bar.set_postfix(finished=f"{finished}/{made}")
        job.finish(total)
    seconds = time.time() - started
    stats = {"samples": total, "made_this_run": made, "finished_this_run": finished,
             "resumed_from": total - made, "batches": len(batches), "loop_steps": steps_run,
             "loop_steps_without_early_stop": steps_max, "seconds": round(seconds, 2),
             "samples_per_s": round(made / seconds, 2) if seconds else None, "seed": seed,
             "passes": {name: {"samples": n, "finished": f, "sampling_seconds": round(s, 2),
                               "finished_titles_per_s": round(f / s, 2) if s else None}
                        for name, (n, f, s) in passes.items()}}
    write_json(out_path.with_name("generate_stats.json"), stats)
    return stats


def _run(cfg: Config) -> str:
    stats = generate(cfg, cfg.paths.checkpoint_dir / cfg.train.run_name, cfg.paths.generated)
    return (f"generate: {stats['samples']} samples ({stats['finished_this_run']} of {stats['made_this_run']} "
            f"new ones finished) in {stats['seconds']} s -> {cfg.paths.generated}")


def main(argv: list[str]) -> int:
    return run_stage("generate", __doc__, argv, _run)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
