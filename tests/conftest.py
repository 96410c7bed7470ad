"""Shared fixtures: one spaCy pipeline, one local Ray instance and one tiny trained GPT-2 per test session,
and the helpers the tests of that model share."""
import dataclasses
import json
import os

import pytest

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
    from tests.test_model import write_encoded

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


# Helpers the tests of the trained model share (import them from tests.conftest).
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
