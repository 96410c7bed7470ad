"""Shared fixtures: one spaCy pipeline and one local Ray instance per test session."""
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def nlp():
    from pipeline.nlp import load_spacy

    return load_spacy("en_core_web_sm")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 2 CPUs, shut down at the end of the session."""
    import ray

    from pipeline.encode import EncodeConfig, start_ray

    start_ray(EncodeConfig(workers=2))
    yield
    ray.shutdown()
