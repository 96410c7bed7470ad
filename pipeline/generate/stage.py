"""Stage 3, generate: bulk generation conditioned on category and keywords.

    python -m pipeline.generate --config configs/default.yaml [generate.batch_size=32 ...]

Every sample of the job gets an index (prompts in order, `count` samples each). The
samples are planned into batches once, deterministically: prompts whose prefixes
have the same number of tokens share batches, so no padding is ever needed. The
model and its sampling graph are loaded once (pipeline.generate.sampler). Records are
appended to `<generated>.partial` after every batch; a re-run with the same job
(same config, prompts and checkpoint) skips the indices already there, and a
different job starts over. When every index is written the records are sorted by
index and renamed onto the output, so make never sees a half-done file.

With keyword guidance on (`guidance.strength` > 0, pipeline.generate.guidance) every batch is
sampled guided and, when `guidance.compare` is set, again unguided with the same seed;
the unguided copies take the indices after the guided ones, and each record says which
it is in `guided`. Every record carries `logprob`, the model's own mean log-probability
per generated token, as a fluency measure.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.device import load_tensorflow, require_gpu
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.io import write_json
from pipeline.core.paths import RunPaths
from pipeline.generate.guidance import GuidanceConfig
from pipeline.generate.jobfile import Batch, JobFile, guidance_passes, job_fingerprint, plan_batches, sample_batch
from pipeline.generate.prompts import Prompt, load_prompts, split_by_budget
from pipeline.generate.sampler import SamplingSettings
from pipeline.generate.sampling import SamplingLoop
from pipeline.train import TRAINED_CATEGORIES

if TYPE_CHECKING:
    from pipeline.generate.pool import Planner

# Keys that decide how the job runs, not what it samples: left out of the job's fingerprint, so
# a job killed with one number of workers resumes with another.
RUNTIME_KEYS = frozenset({"threads", "workers", "gpus", "ray_address"})
# Names of a batch's pass (Batch.guided) in the stats.
_PASS_NAMES = {None: "plain", True: "guided", False: "unguided"}


@dataclass(frozen=True)
class GenerateConfig:
    """The `generate:` section.

    prompts_file: YAML or CSV rows of category, keywords, count (see pipeline.generate.prompts); when
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
    workers: int = 1
    candidates: int = 1  # best-of-n (pipeline.generate.best_of): samples drawn per title, the best kept
    gpus: float = 0.0
    ray_address: str | None = None

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
        if self.workers < 1:
            raise ConfigError(f"workers: must be at least 1, got {self.workers}")
        if self.candidates < 1:
            raise ConfigError(f"candidates: must be at least 1, got {self.candidates}")
        if self.gpus < 0:
            raise ConfigError(f"gpus: must be 0 (CPU) or more, got {self.gpus}")


    @property
    def sampling(self) -> SamplingSettings:
        """The sampler's settings from this section."""
        return SamplingSettings(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)


def plan_job(loop: SamplingLoop | Planner, prompts: list[Prompt], g: GenerateConfig, guidance: GuidanceConfig,
             seed: int) -> tuple[list[Batch], int]:
    """Every batch of the job, in order, and the number of samples (guided and unguided passes included).

    loop: anything with `prompt_tokens(prompt)` and `guided` (a SamplingLoop, or generate_pool.Planner).
    """
    batches = plan_batches(prompts, [loop.prompt_tokens(p) for p in prompts], g.batch_size, seed)
    total = sum(p.count for p in prompts)
    if loop.guided:
        batches = guidance_passes(batches, total, guidance.compare)
        total *= 2 if guidance.compare else 1
    return batches, total


# A job with more samples than this is announced with its estimated time before it starts.
LARGE_JOB = 10_000


def warn_job(prompts: list[Prompt], total: int, done: int, checkpoint: Path, stats_path: Path) -> list[str]:
    """Print (to stderr) and return the warnings about a job before it starts.

    total/done: samples planned and already made. A job over LARGE_JOB samples is announced with
    its count and an estimated time, at the pace of this run's last generate job (`stats_path`)
    when there was one. Prompt categories missing from the model's training text (the
    `categories.json` train writes beside the checkpoint) are named: the model never saw them.
    """
    warnings = []
    todo = total - done
    if todo > LARGE_JOB:
        pace = None
        if stats_path.is_file():
            with contextlib.suppress(ValueError, AttributeError):
                pace = json.loads(stats_path.read_text(encoding="utf-8")).get("samples_per_s")
        estimate = (f"about {todo / pace / 3600:.1f} h at the last job's {pace:g} samples/s"
                    if isinstance(pace, (int, float)) and pace > 0 else "time unknown until the first batches")
        warnings.append(f"{todo:,} samples to make ({total:,} planned, {done:,} already made, guided and unguided "
                        f"passes included); {estimate}")
    trained_file = checkpoint / TRAINED_CATEGORIES
    if trained_file.is_file():
        trained = set(json.loads(trained_file.read_text(encoding="utf-8")))
        unseen = sorted({p.category for p in prompts if p.category is not None} - trained)
        if unseen:
            names = ", ".join(unseen[:10]) + (f" and {len(unseen) - 10} more" if len(unseen) > 10 else "")
            warnings.append(f"{len(unseen)} prompt categor{'y is' if len(unseen) == 1 else 'ies are'} not in the "
                            f"training text, so the model never saw {'it' if len(unseen) == 1 else 'them'}: {names}")
    for line in warnings:
        print(f"generate: warning: {line}", file=sys.stderr)
    return warnings


def generate(g: GenerateConfig, guidance: GuidanceConfig, seed: int, checkpoint: Path, out_path: Path,
             stats_path: Path, candidates_path: Path | None = None) -> dict:
    """Generate every planned sample from the model in `checkpoint` into JSON Lines `out_path`.

    checkpoint: gpt-2-simple's `checkpoint/<run_name>` folder. With `g.workers` 1 the batches are
    sampled in this process; with more, on a pool of Ray actors (pipeline.generate.pool), with
    the same result. With `g.candidates` k > 1 the k - 1 rejected candidates of every sample go to
    `candidates_path` (pipeline.generate.best_of). Returns the job's stats (also written to `stats_path`).
    """
    from tqdm import tqdm

    prompts, too_long, budget = split_by_budget(load_prompts(g), checkpoint, g.length)
    if too_long:
        first = too_long[0]
        print(f"generate: warning: {len(too_long)} prompt(s) skipped ({sum(p.count for p in too_long)} samples): "
              f"longer than the {budget} tokens the model's context leaves a prompt beside generate.length "
              f"{g.length}; the first has category {first.category!r} and {len(first.keywords)} keywords",
              file=sys.stderr)
    if not prompts:
        raise InputError(f"every prompt is longer than the {budget} tokens the model's context leaves a prompt")
    started = time.time()
    with _sampling(g, guidance, checkpoint, prompts) as (planner, sample_all):
        batches, total = plan_job(planner, prompts, g, guidance, seed)
        identity = {"seed": seed, "generate": {k: v for k, v in dataclasses.asdict(g).items() if k not in RUNTIME_KEYS},
                    "guidance": dataclasses.asdict(guidance)}
        job = JobFile(out_path, job_fingerprint(identity, prompts, checkpoint))
        done = job.open()
        if not done and candidates_path is not None:  # a new job: another job's candidates do not belong
            _side_partial(candidates_path).unlink(missing_ok=True)
        warn_job(prompts, total, len(done), checkpoint, stats_path)
        todo = [b for b in batches if not all(i in done for i in b.indices)]
        steps_run = steps_max = finished = made = 0
        # Per pass (guided / unguided / plain): samples, finished titles and seconds made this run.
        passes: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        # closing: a pool's actors are killed as soon as the loop ends, an error included.
        with tqdm(total=total, initial=len(done), unit="sample", desc="generate") as bar, \
                contextlib.closing(sample_all(todo)) as outcomes:
            for batch, outcome in outcomes:
                records = [r for r in outcome.records if r["index"] not in done]
                _keep_rejected(records, candidates_path)
                job.append(records)
                tally = passes[_PASS_NAMES[batch.guided]]
                tally[0] += len(records)
                tally[1] += sum(r["finished"] for r in records)
                tally[2] += outcome.seconds
                steps_run += outcome.steps
                steps_max += outcome.steps_max
                finished += sum(r["finished"] for r in records)
                made += len(records)
                bar.update(len(records))
                bar.set_postfix(finished=f"{finished}/{made}")
        job.finish(total)
        _finish_rejected(g, candidates_path)
    seconds = time.time() - started
    stats = {"samples": total, "made_this_run": made, "finished_this_run": finished,
             "resumed_from": total - made, "batches": len(batches), "loop_steps": steps_run,
             "loop_steps_without_early_stop": steps_max, "seconds": round(seconds, 2),
             "samples_per_s": round(made / seconds, 2) if seconds else None, "seed": seed, "workers": g.workers,
             "skipped_prompts": {"too_long": len(too_long), "samples": sum(p.count for p in too_long)},
             "passes": {name: {"samples": n, "finished": f, "sampling_seconds": round(s, 2),
                               "finished_titles_per_s": round(f / s, 2) if s else None}
                        for name, (n, f, s) in passes.items()}}
    write_json(stats_path, stats)
    return stats


def _side_partial(candidates_path: Path) -> Path:
    return candidates_path.with_name(candidates_path.name + ".partial")


def _keep_rejected(records: list[dict], candidates_path: Path | None) -> None:
    """Move best-of-n's rejected candidates out of `records` into the side file (before the records
    themselves are written, so a kill in between redoes the batch instead of losing them)."""
    rejected = [c for r in records for c in r.pop("rejected", ())]
    if rejected and candidates_path is not None:
        from pipeline.generate.best_of import append_candidates

        append_candidates(_side_partial(candidates_path), rejected)


def _finish_rejected(g: GenerateConfig, candidates_path: Path | None) -> None:
    """The side file of a finished job: sorted and renamed into place, or removed when k is 1."""
    if candidates_path is None:
        return
    if g.candidates == 1:
        candidates_path.unlink(missing_ok=True)
        return
    from pipeline.generate.best_of import finish_candidates

    finish_candidates(_side_partial(candidates_path), candidates_path)


@contextlib.contextmanager
def _sampling(g: GenerateConfig, guidance: GuidanceConfig, checkpoint: Path, prompts: list[Prompt]):
    """(planner, sample_all): what plans the job, and `sample_all(batches)` yielding (batch, BatchOutcome).

    One worker: a SamplingLoop in this process is both. More: pipeline.generate.pool's actors sample
    and a tokenizer in this process plans, so the driver never builds a TensorFlow graph.
    """
    if g.workers == 1:
        with SamplingLoop(checkpoint, g.sampling, g.length, guidance, threads=g.threads,
                          candidates=g.candidates) as loop:
            yield loop, lambda todo: ((b, sample_batch(loop, b, prompts)) for b in todo)
        return
    import pipeline.generate.pool as generate_pool

    yield generate_pool.Planner(checkpoint, guidance), lambda todo: generate_pool.sample_on_pool(
        g, guidance, checkpoint, prompts, todo)


def run(g: GenerateConfig, guidance: GuidanceConfig, seed: int, paths: RunPaths) -> str:
    """The stage: the model in `paths.checkpoint` -> `paths.generated` and `paths.generate_stats` (and
    best-of-n's rejected candidates in `paths.generated_candidates`).

    Returns the line the command prints; InputError when the run is not trained yet.
    """
    if not paths.train_done.is_file():
        raise InputError(f"{paths.train_done} does not exist: the run is not trained yet (run `make train`)")
    if g.workers == 1 or (g.gpus and g.ray_address is None):  # a pool's driver loads no model, its actors do
        tf = load_tensorflow("generate")
        if g.gpus and g.ray_address is None:  # a cluster's GPUs are not this machine's to see
            require_gpu(tf, "generate.gpus")
    stats = generate(g, guidance, seed, paths.checkpoint, paths.generated, paths.generate_stats,
                     paths.generated_candidates)
    return (f"generate: {stats['samples']} samples ({stats['finished_this_run']} of {stats['made_this_run']} "
            f"new ones finished) in {stats['seconds']} s -> {paths.generated}")

