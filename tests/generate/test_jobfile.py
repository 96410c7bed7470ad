"""The generate job's batch plan (pipeline.generate.jobfile); resuming is in tests/generate/test_generate.py."""
from pipeline.generate import Prompt
from pipeline.generate.jobfile import plan_batches


def test_batches_share_prompt_length_and_cover_every_index():
    prompts = [Prompt("aww", ("dog",), 5), Prompt("gaming", ("cat",), 3), Prompt("science", (), 4)]
    lens = [7, 7, 6]
    batches = plan_batches(prompts, lens, batch_size=4, seed=10)
    indices = [i for b in batches for i in b.indices]
    assert sorted(indices) == list(range(12))
    for b in batches:
        assert len(b.indices) <= 4 and len({lens[p] for p in b.prompt_ids}) == 1
    # Prompts 0 and 1 have the same length, so the batch after the first four mixes them.
    assert batches[1].prompt_ids == (0, 1, 1, 1)
    assert [b.seed for b in batches] == list(range(10, 10 + len(batches)))
    assert plan_batches(prompts, lens, 4, 10) == batches
