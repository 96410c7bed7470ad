"""The batched sampler (pipeline.generate.sampler) on the tiny model trained in the tests (conftest `trained`)."""
from pipeline.core.format import END_TOKEN, build_prefix
from tests.conftest import checkpoint


def test_batch_stops_as_soon_as_every_sample_ended(trained):
    from pipeline.generate.sampler import Sampler, SamplingSettings

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


def test_nucleus_fast_path_and_bands_keep_exactly_what_a_full_sort_keeps():
    import numpy as np
    import tensorflow as tf

    from pipeline.generate.sampler import _top_p

    rng = np.random.default_rng(0)
    peaked = rng.normal(0, 1, (4, 1000)).astype(np.float32)
    peaked[:, :5] += 12  # the nucleus is among a handful of tokens: the partial top-k serves
    flat = rng.normal(0, 0.01, (4, 1000)).astype(np.float32)  # nucleus of ~900 tokens: the bands serve
    masked = np.where(rng.random((4, 1000)) < 0.5, -1e10, np.round(rng.normal(0, 1, (4, 1000)), 1)).astype(np.float32)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, 1000])
        fast, full = _top_p(tf, x, 0.9, fast_k=16), _top_p(tf, x, 0.9, fast_k=1000)
        for logits, few in ((peaked, True), (flat, False), (masked, False)):  # masked: top-k's cut, and ties
            a, b = sess.run((fast, full), {x: logits})
            kept = a > -1e9
            assert (kept == (b > -1e9)).all()
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            # The kept set is the smallest prefix of the sorted tokens holding probability 0.9 (with
            # every token tied with its least likely member).
            for row, keep in zip(probs, kept):
                inside = np.sort(row[keep])[::-1]
                assert inside.sum() >= 0.9 - 1e-5 and inside[inside > inside[-1]].sum() < 0.9 + 1e-5
            # Both paths are exercised: within the 16 fast candidates, and far beyond them (fast_k=1000
            # is the full sort).
            assert (kept.sum(1) <= 16).all() if few else (kept.sum(1) > 16).all()


def test_a_title_opens_no_section(trained):
    from pipeline.core.format import MARKER, SECTIONS
    from pipeline.generate.sampler import Sampler, SamplingSettings, section_openers

    cfg, _ = trained
    with Sampler(checkpoint(cfg), SamplingSettings(temperature=1.5, top_p=0.0)) as sampler:
        inside, ends, begins = section_openers(sampler.enc)
        assert sampler.decode([int(inside.nonzero()[0][0])]).count(MARKER) and ends.any() and begins.any()
        # Hot sampling after a title that ends with a marker: no sample writes a section character
        # next, nor a marker-and-section pair anywhere in the title.
        prompt = sampler.encode(build_prefix("aww", ["dog"]) + "My dog " + MARKER)
        assert ends[prompt[-1]]
        for seed in range(3):
            out = sampler.sample([prompt] * 8, length=20, seed=seed)
            for row in out.tokens.tolist():
                title = sampler.decode(row)[len(build_prefix("aww", ["dog"])):].split(END_TOKEN)[0]
                assert not any(MARKER + c in title for c in SECTIONS.values()), title


def test_a_begun_end_marker_is_finished_not_turned_into_a_new_document(trained):
    from pipeline.core.format import BROKEN_MARKER, START_TOKEN
    from pipeline.generate.sampler import Sampler, SamplingSettings, marker_rest

    cfg, _ = trained
    with Sampler(checkpoint(cfg), SamplingSettings(temperature=1.0, top_p=0.0)) as sampler:
        opener, rest = marker_rest(sampler.enc)
        assert rest and sampler.decode(rest) == END_TOKEN[len(BROKEN_MARKER):]
        assert opener.sum() >= 1 and all(sampler.decode([i]).endswith(BROKEN_MARKER) for i in opener.nonzero()[0])
        # A title whose last token begins the marker: every sample spells the rest of the end
        # marker and nothing else, whatever the seed, even where the model would start a document.
        prompt = sampler.encode(build_prefix("aww", ["dog"]) + "My dog" + BROKEN_MARKER)
        start_rest = sampler.encode(START_TOKEN)[-len(rest):]
        for seed in range(4):
            out = sampler.sample([prompt] * 3, length=20, seed=seed)
            assert out.steps == len(rest)
            for row in out.tokens.tolist():
                assert row[len(prompt):] == rest and row[len(prompt):] != start_rest
                assert sampler.decode(row).endswith("My dog" + END_TOKEN)
        # Half way through the marker it goes on from where it is (this vocabulary spells the rest
        # with more than one token).
        assert len(rest) > 1
        half = sampler.sample([prompt + rest[:1]] * 2, length=20, seed=0)
        assert half.tokens[:, len(prompt) + 1:].tolist() == [rest[1:]] * 2


def test_a_begun_character_is_always_completed(trained):
    """The tiny model's vocabulary spells '日' (e6 97 a5) as three byte tokens; a text ending after one
    or two of them is finished with exactly the continuation bytes it owes, whatever the model prefers."""
    from pipeline.generate.sampler import Sampler, SamplingSettings

    cfg, _ = trained
    with Sampler(checkpoint(cfg), SamplingSettings(temperature=1.0, top_p=0.0)) as sampler:
        head = sampler.encode(build_prefix("aww", ["dog"]) + "My")
        char = sampler.encode("日")
        assert len(char) == 3
        for begun in (1, 2):
            prompt = head + char[:begun]
            for seed in range(3):
                out = sampler.sample([prompt] * 8, length=6, seed=seed)
                for row in out.tokens.tolist():
                    text = sampler.decode(row)
                    new = text[len(sampler.decode(head)):]
                    # One whole character with the begun bytes (U+6000..U+6FFF all start with e6 in UTF-8).
                    assert "\u6000" <= new[0] <= "\u6fff" and new[0].encode()[:begun] == "日".encode()[:begun], new
                    assert "\ufffd" not in new[:1]
