"""Shared fixtures: one spaCy pipeline, one local Ray instance and one tiny trained GPT-2 per test session,
and the helpers the tests of that model share."""
import dataclasses
import json
import os
import random
from pathlib import Path

import pytest

from pipeline.core.format import Document, build_document

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def nlp():
    from pipeline.core.nlp import load_spacy

    return load_spacy("en_core_web_sm")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 2 CPUs, shut down at the end of the session."""
    import ray

    from pipeline.encode.stage import EncodeConfig, start_ray

    start_ray(EncodeConfig(workers=2))
    yield
    ray.shutdown()


# Steps the shared tiny model is trained for.
TINY_STEPS = 200


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A Config whose run folder holds a tiny model trained for TINY_STEPS steps, and its train.done record."""
    from pipeline.config import Config
    from pipeline.train import ModelConfig, TrainConfig, train

    root = tmp_path_factory.mktemp("run")
    # A relative data folder, as in the configs (gpt-2-simple runs in another working directory).
    cwd = os.getcwd()
    os.chdir(root)
    cfg = dataclasses.replace(
        Config(), name="tiny", seed=5, data_dir="data",
        model=ModelConfig(n_embd=32, n_layer=2, n_head=2, vocab_size=350),
        train=TrainConfig(steps=TINY_STEPS, learning_rate=3e-3, save_every=0, print_every=100),
    )
    cfg.paths.run_dir.mkdir(parents=True)
    write_encoded(cfg.paths.encoded, 300)
    try:
        p = cfg.paths
        record = train(cfg.model, cfg.train, cfg.seed, p.encoded, p.checkpoint_dir, p.train_done, p.scratch_model)
    finally:
        os.chdir(cwd)
    return dataclasses.replace(cfg, data_dir=str(root / "data")), record


# Helpers tests of several packages share (import them from tests.conftest).
def write_encoded(path, n_docs, seed=0):
    """A small training text in the shared format: made-up titles with their keywords."""
    rng = random.Random(seed)
    nouns = ["dog", "cat", "pizza", "robot", "garden", "coffee", "book", "planet", "Big Bird"]
    docs = []
    for _ in range(n_docs):
        a, b = rng.sample(nouns, 2)
        title = rng.choice(["My {a} ate the {b}", "Is a {a} better than a {b}?", "TIL {a} and {b} are friends!"])
        kws = tuple(k.replace(" ", "-") for k in rng.sample([a, b], rng.randint(1, 2)))
        docs.append(build_document(Document(category=rng.choice(["aww", "science"]), keywords=kws,
                                            title=title.format(a=a, b=b))))
    path.write_text("\n".join(docs) + "\n", encoding="utf-8")
    return docs


def write_run_config(trained, folder: Path, extra: str = "") -> Path:
    """A config file (named tiny.yaml, so the run is 'tiny') pointing at the trained tiny run."""
    cfg, _ = trained
    path = folder / "tiny.yaml"
    path.write_text(f"seed: 5\ndata_dir: {cfg.data_dir}\n"
                    "guidance:\n  strength: 8.0\n  end_bias: 4.0\n" + extra, encoding="utf-8")
    return path


def checkpoint(cfg):
    """The trained model folder of `cfg`'s run."""
    return cfg.paths.checkpoint


def train_run(cfg):
    """Train `cfg`'s run (resuming what is there); returns the train.done record."""
    from pipeline.train import train

    p = cfg.paths
    return train(cfg.model, cfg.train, cfg.seed, p.encoded, p.checkpoint_dir, p.train_done, p.scratch_model)


def generate_to(cfg, checkpoint, out):
    """Run the generate job of `cfg` from `checkpoint` into `out` (stats beside it); returns the stats."""
    from pipeline.generate import generate

    return generate(cfg.generate, cfg.guidance, cfg.seed, checkpoint, out, out.with_name("generate_stats.json"))


def with_generate(cfg, **kw):
    """`cfg` with a small cross-product generate job (two categories x two keyword sets), `kw` overriding."""
    from pipeline.generate import GenerateConfig

    base = dict(prompts_file=None, categories=("aww", "science"), keyword_sets=(("dog", "Big Bird"), ("coffee",)),
                count=3, length=60, batch_size=4, temperature=0.8)
    return dataclasses.replace(cfg, generate=GenerateConfig(**{**base, **kw}))


def read_jsonl(path):
    """The records of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
