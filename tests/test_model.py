"""Base models: the released-model offline error, the from-scratch vocabulary and checkpoint, prompts."""
import dataclasses
import json
import random

import pytest

from pipeline.config import Config, load_config
from pipeline.errors import ConfigError, InputError
from pipeline.format import END_TOKEN, Document, build_document, build_prefix
from pipeline.generate import GenerateConfig
from pipeline.jobfile import plan_batches
from pipeline.model import RELEASED_FILES, ModelConfig, ensure_released, ensure_scratch
from pipeline.prompts import Prompt, load_prompts, load_prompts_file

TINY = ModelConfig(n_embd=32, n_layer=2, n_head=2, vocab_size=350)


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


def test_released_model_offline_error_names_folder_and_files(tmp_path):
    models = tmp_path / "models"
    (models / "124M").mkdir(parents=True)
    (models / "124M" / "hparams.json").write_text("{}")
    mcfg = ModelConfig(kind="released", released="124M", models_dir=str(models), allow_download=False)
    with pytest.raises(InputError) as err:
        ensure_released(mcfg)
    message = str(err.value)
    assert str(models / "124M") in message
    for name in RELEASED_FILES:
        assert (name in message) == (name != "hparams.json"), name


def test_released_model_present_is_used_without_download(tmp_path):
    folder = tmp_path / "355M"
    folder.mkdir()
    for name in RELEASED_FILES:
        (folder / name).write_text("x")
    base = ensure_released(ModelConfig(kind="released", released="355M", models_dir=str(tmp_path),
                                       allow_download=False))
    assert base.path == folder


@pytest.mark.parametrize("override, key", [("model.n_ctx=512", "model.n_ctx"), ("model.n_head=3", "model.n_embd"),
                                           ("model.vocab_size=100", "model.vocab_size"),
                                           ("train.use_memory_saving_gradients=true", "train.use_memory_saving_gradients"),
                                           ("generate.top_p=1.5", "generate.top_p"),
                                           ("generate.temperature=0", "generate.temperature"),
                                           ("generate.categories=[aww]", "generate.prompts_file")])
def test_bad_model_train_generate_values_name_the_key(tmp_path, override, key):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path, [override])


def test_scratch_model_vocabulary_encodes_like_the_training_text(tmp_path):
    from gpt_2_simple.src import encoder

    from pipeline.sampler import end_tail
    from pipeline.train_log import dataset_tokens

    encoded = tmp_path / "encoded.txt"
    docs = write_encoded(encoded, 150)
    base = ensure_scratch(TINY, 3, encoded, tmp_path / "scratch")

    hparams = json.loads((base.path / "hparams.json").read_text())
    enc = encoder.get_encoder(str(base.path))
    assert hparams["n_vocab"] == len(enc.encoder) and hparams["n_embd"] == 32 and hparams["n_layer"] == 2
    assert len(enc.encoder) <= TINY.vocab_size + 1 and END_TOKEN in enc.encoder
    # Lossless round trip, and the learned merges really compress the text.
    text = "\n".join(docs[:20])
    ids = enc.encode(text)
    assert enc.decode(ids) == text and len(ids) < len(text.encode()) / 2
    # The fast tokenizer used for the training dataset gives gpt-2-simple's ids exactly.
    import numpy as np

    n = dataset_tokens(base.path, encoded, tmp_path / "d.npz")
    fast = np.load(tmp_path / "d.npz")["arr_0"]
    assert n == len(fast) and fast.tolist() == enc.encode(encoded.read_text())
    # The end marker's tail is what every document ends with, whatever precedes it.
    tail = end_tail(enc)
    for doc in docs[:30]:
        assert enc.encode(doc)[-len(tail):] == tail


def test_scratch_model_checkpoint_is_reused_or_rebuilt(tmp_path):
    import tensorflow as tf

    encoded = tmp_path / "encoded.txt"
    write_encoded(encoded, 120)
    base = ensure_scratch(TINY, 3, encoded, tmp_path / "scratch")
    reader = tf.train.load_checkpoint(str(base.path / "model.ckpt"))
    shapes = reader.get_variable_to_shape_map()
    n_vocab = json.loads((base.path / "hparams.json").read_text())["n_vocab"]
    assert shapes["model/wte"] == [n_vocab, 32] and shapes["model/wpe"] == [1024, 32]
    assert "model/h1/attn/c_attn/w" in shapes and "model/h2/attn/c_attn/w" not in shapes
    assert tf.train.latest_checkpoint(str(base.path)) is not None

    stamp = (base.path / "model.ckpt.index").stat().st_mtime_ns
    ensure_scratch(TINY, 3, encoded, tmp_path / "scratch")
    assert (base.path / "model.ckpt.index").stat().st_mtime_ns == stamp
    ensure_scratch(dataclasses.replace(TINY, n_embd=48), 3, encoded, tmp_path / "scratch")
    assert tf.train.load_checkpoint(str(base.path / "model.ckpt")).get_variable_to_shape_map()["model/wpe"] == [1024, 48]


def test_prompts_from_yaml_csv_and_cross_product(tmp_path):
    yml = tmp_path / "p.yaml"
    yml.write_text("prompts:\n  - {category: Ask Reddit, keywords: [Big Bird, '[dog'], count: 2}\n"
                   "  - {category: null, keywords: 'cat, coffee'}\n")
    prompts = load_prompts_file(yml, default_count=5)
    assert prompts == [Prompt("ask-reddit", ("Big-Bird", "dog"), 2), Prompt(None, ("cat", "coffee"), 5)]
    assert prompts[0].prefix == build_prefix("Ask Reddit", ["Big Bird", "[dog"]) == \
        "<|startoftext|>~`ask-reddit~^Big-Bird dog~@"

    csv_path = tmp_path / "p.csv"
    csv_path.write_text('category,keywords,count\naww,"dog, cat",3\nscience,,\n')
    assert load_prompts_file(csv_path, 1) == [Prompt("aww", ("dog", "cat"), 3), Prompt("science", (), 1)]

    cross = GenerateConfig(prompts_file=None, categories=("aww", "gaming"), keyword_sets=(("dog",), ("cat", "car")),
                           count=4)
    assert [(p.category, p.keywords, p.count) for p in load_prompts(cross)] == [
        ("aww", ("dog",), 4), ("aww", ("cat", "car"), 4), ("gaming", ("dog",), 4), ("gaming", ("cat", "car"), 4)]


@pytest.mark.parametrize("text, problem", [("- {category: aww, keywords: [dog], count: 0}\n", "prompt 1: count"),
                                           ("- {category: aww, keyword: [dog]}\n", "prompt 1: unknown key 'keyword'"),
                                           ("- {category: aww}\n- just text\n", "prompt 2: expected a mapping"),
                                           ("category: aww\n", "expected a list of prompts")])
def test_bad_prompts_file_names_the_row(tmp_path, text, problem):
    path = tmp_path / "prompts.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=problem):
        load_prompts_file(path, 1)


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


def test_nucleus_fast_path_keeps_exactly_what_a_full_sort_keeps():
    import numpy as np
    import tensorflow as tf

    from pipeline.sampler import _top_p

    rng = np.random.default_rng(0)
    peaked = rng.normal(0, 1, (4, 1000)).astype(np.float32)
    peaked[:, :5] += 12  # the nucleus is among a handful of tokens: the partial top-k serves
    flat = rng.normal(0, 0.01, (4, 1000)).astype(np.float32)  # nucleus of ~900 tokens: full sort
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, 1000])
        fast, full = _top_p(tf, x, 0.9, fast_k=16), _top_p(tf, x, 0.9, fast_k=1000)
        for logits, few in ((peaked, True), (flat, False)):
            a, b = sess.run((fast, full), {x: logits})
            kept = a > -1e9
            assert (kept == (b > -1e9)).all()
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            # The kept set is the smallest prefix of the sorted tokens holding probability 0.9.
            for row, keep in zip(probs, kept):
                inside = np.sort(row[keep])[::-1]
                assert inside.sum() >= 0.9 - 1e-5 and inside.sum() - inside[-1] < 0.9 + 1e-5
            # Both paths are exercised: within the 16 fast candidates, and far beyond them.
            assert (kept.sum(1) <= 16).all() if few else (kept.sum(1) > 16).all()
