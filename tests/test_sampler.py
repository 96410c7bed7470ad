"""The batched sampler (pipeline.sampler) on the tiny model trained in the tests (conftest `trained`)."""
from pipeline.format import END_TOKEN, build_prefix
from tests.conftest import checkpoint


def test_batch_stops_as_soon_as_every_sample_ended(trained):
    from pipeline.sampler import Sampler, SamplingSettings

    cfg, _ = trained
    length = 200
    with Sampler(checkpoint(cfg), SamplingSettings(temperature=0.7)) as sampler:
        prompt = sampler.encode(build_prefix("aww", ["dog"]))
        out = sampler.sample([prompt] * 4, length=length, seed=1)
        assert out.steps < length and out.tokens.shape[1] == len(prompt) + out.steps
        # The loop ran exactly until the slowest sample produced the end marker, no further.
        k = len(sampler.tail)
        ends = []
        for row in out.tokens[:, len(prompt):].tolist():
            ends.append(next(i for i in range(k, len(row) + 1) if row[i - k:i] == sampler.tail))
            assert END_TOKEN in sampler.decode(row[:ends[-1]])
        assert max(ends) == out.steps and min(ends) < out.steps
        # With a limit below that, the batch runs to the limit and no sample has ended.
        short = sampler.sample([prompt] * 4, length=2, seed=1)
        assert short.steps == 2
        assert not any(END_TOKEN in sampler.decode(row[len(prompt):]) for row in short.tokens.tolist())
        # Same seed, same samples: a batch does not depend on what the session ran before.
        assert (sampler.sample([prompt] * 4, length=length, seed=1).tokens == out.tokens).all()
