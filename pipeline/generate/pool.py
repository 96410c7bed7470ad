"""Generate on a pool of Ray actors (`generate.workers` > 1): one per GPU, per CPU worker, or across a cluster.

The driver plans the job as the in-process path does (pipeline.generate.stage; here with the
checkpoint's tokenizer alone, so it builds no TensorFlow graph) and deals the batches still
to do to the actors (pipeline.core.actor_pool). Each actor loads the model and builds its
sampling graph once, then samples the batches it is given; every batch has its own seed
and the sampler draws from a stateless generator keyed by it, so a batch gives the same
records whichever actor samples it, and the job's output is byte-identical whatever the
number of workers. The driver writes the records as they come back (pipeline.generate.jobfile).

The checkpoint reaches the actors by path on a local Ray (same machine, same files) and
through Ray's object store on a cluster (`generate.ray_address` set): only the files
sampling reads (weights of the newest checkpoint, hparams, tokenizer) travel, once per
machine, so no shared file system is needed and no stale copy on a worker can be used.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol

from pipeline.core import actor_pool
from pipeline.core.errors import InputError
from pipeline.generate.jobfile import Batch, BatchOutcome, sample_batch
from pipeline.generate.sampling import SamplingLoop

if TYPE_CHECKING:
    from pipeline.generate.guidance import GuidanceConfig
    from pipeline.generate.prompts import Prompt
    from pipeline.generate.sampler import SamplingSettings

# Files of a checkpoint folder that sampling never reads: TensorBoard logs and the weights of older checkpoints.
_LOGS = re.compile(r"^events\.out\.tfevents\.")
_WEIGHTS = re.compile(r"\.(data-\d+-of-\d+|index|meta)$")


class PoolSettings(Protocol):
    """What the pool uses of the `generate:` section (pipeline.generate.stage.GenerateConfig owns it)."""

    workers: int
    gpus: float
    threads: int
    ray_address: str | None
    length: int
    candidates: int

    @property
    def sampling(self) -> SamplingSettings: ...


class Planner:
    """What plans a job in the driver: the checkpoint's tokenizer, and whether guidance builds a hook."""

    def __init__(self, checkpoint: Path, guidance: GuidanceConfig):
        from gpt_2_simple.src import encoder

        if not (checkpoint / "encoder.json").is_file():
            raise InputError(f"no checkpoint in {checkpoint} (run the train stage first)")
        self.enc = encoder.get_encoder(str(checkpoint))
        self.guided = guidance.active

    def prompt_tokens(self, prompt: Prompt) -> int:
        """How many tokens `prompt`'s prefix takes, as SamplingLoop.prompt_tokens counts them."""
        return len(self.enc.encode(prompt.prefix))


class GenerateWorker:
    """A Ray actor: loads the model and builds its sampling graph once, then samples batch after batch.

    checkpoint: the folder, or what ship_checkpoint shipped (unpacked on this machine);
    prompts: the job's prompts (batches refer to them by position); candidates: best-of-n's k, as
    in the in-process loop (a batch's records then carry their rejected candidates to the driver).
    """

    def __init__(self, checkpoint: Path | tuple, name: str, settings: SamplingSettings, length: int,
                 guidance: GuidanceConfig, threads: int, prompts: list[Prompt], candidates: int = 1):
        if not isinstance(checkpoint, Path):
            checkpoint = actor_pool.unpack_files(checkpoint, name)
        self.loop = SamplingLoop(checkpoint, settings, length, guidance, threads=threads, candidates=candidates)
        self.prompts = prompts

    def sample(self, batch: Batch) -> BatchOutcome:
        """The batch's records, steps and seconds (pipeline.generate.jobfile.sample_batch)."""
        return sample_batch(self.loop, batch, self.prompts)

    def pid(self) -> int:
        """This actor's process id (tests kill it)."""
        return os.getpid()


def ship_checkpoint(checkpoint: Path):
    """The files of `checkpoint` that sampling may read, in Ray's object store (actor_pool.ship_files).

    Every file of the folder (hparams, tokenizer, the training text guidance reads its title lengths
    from, ...) but TensorBoard logs and older checkpoints' weights. The `checkpoint` marker is
    rewritten to name the newest checkpoint by its base name: the original may hold this
    machine's absolute path.
    """
    import tensorflow as tf

    newest = tf.train.latest_checkpoint(str(checkpoint))
    if newest is None:
        raise InputError(f"no checkpoint in {checkpoint} (run the train stage first)")
    prefix = Path(newest).name
    files = [p for p in sorted(checkpoint.iterdir()) if p.is_file() and p.name != "checkpoint"
             and not _LOGS.match(p.name) and not (_WEIGHTS.search(p.name) and not p.name.startswith(prefix + "."))]
    marker = f'model_checkpoint_path: "{prefix}"\nall_model_checkpoint_paths: "{prefix}"\n'
    return actor_pool.ship_files(files, {"checkpoint": marker.encode()})


def sample_on_pool(g: PoolSettings, guidance: GuidanceConfig, checkpoint: Path, prompts: list[Prompt],
                   todo: list[Batch]) -> Iterator[tuple[Batch, BatchOutcome]]:
    """Sample `todo` on `g.workers` actors; yields (batch, outcome) as batches finish.

    Starts (or joins) Ray first; raises ConfigError when the cluster is unreachable or too small,
    and actor_pool.PoolError when a batch fails repeatedly. Closing the generator kills the actors.
    """
    import ray

    actor_pool.start_ray(g.workers, g.ray_address, gpus=g.gpus, section="generate")
    # A local Ray shares this machine's files; a cluster's machines may not.
    source = ship_checkpoint(checkpoint) if g.ray_address else checkpoint.resolve()
    spec = actor_pool.ActorSpec(GenerateWorker, (source, checkpoint.name, g.sampling, g.length, guidance,
                                                 g.threads, ray.put(prompts), g.candidates),
                                num_cpus=1, num_gpus=g.gpus)
    def describe(number: int) -> str:
        b = todo[number]
        return f"the batch of samples {b.indices[0]}..{b.indices[-1]} (seed {b.seed})"

    try:
        for number, outcome in actor_pool.run_pool(spec, "sample", ((b,) for b in todo), g.workers, describe=describe):
            yield todo[number], outcome
    except actor_pool.PoolError as exc:
        raise actor_pool.PoolError(f"{exc}; the samples made so far stay in the .partial file and a re-run "
                                   "resumes from them") from None
