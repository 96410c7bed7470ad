"""Our GPT-2 graph (pipeline.core.transformer) against gpt-2-simple's model function on the same variables:
the parity that lets either load the other's checkpoints, and the hand-written gradients against autodiff's."""
import numpy as np
import pytest

from pipeline.core.device import load_tensorflow

tf = load_tensorflow("tests", announce=False)
tf.compat.v1.disable_eager_execution()  # as gpt-2-simple leaves the process

from gpt_2_simple.src import model as gpt_model  # noqa: E402

from pipeline.core import copy_head, transformer  # noqa: E402

SHAPE = {"n_vocab": 97, "n_ctx": 64, "n_embd": 32, "n_head": 4, "n_layer": 2}


def hparams():
    hp = gpt_model.default_hparams()
    hp.override_from_dict(SHAPE)
    return hp


def run(fetches, feed_fn, seed=3):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        x = tf.compat.v1.placeholder(tf.int32, [None, None])
        built = fetches(x)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return sess.run(built, feed_fn(x))


def test_the_same_variables_give_the_same_logits_and_cache_as_gpt_2_simple():
    tokens = np.random.default_rng(0).integers(0, 97, size=(2, 21), dtype=np.int32)

    def build(x):
        ref = gpt_model.model(hparams=hparams(), X=x)  # creates model/... as finetune did
        ours = transformer.forward(hparams(), x)  # reuses them by name: a shape or name change fails here
        names = sorted(v.name for v in tf.compat.v1.global_variables())
        # With a cache: the last 5 tokens after the first 16.
        past = transformer.forward(hparams(), x[:, :16])["present"]
        tail = transformer.forward(hparams(), x[:, 16:], past=past)["logits"]
        return ref["logits"], ours["logits"], ref["present"], ours["present"], tail, names

    ref, ours, ref_present, present, tail, names = run(build, lambda x: {x: tokens})
    assert len(names) == 4 + 12 * SHAPE["n_layer"]  # no variable of ours beside gpt-2-simple's
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    np.testing.assert_allclose(present, ref_present, atol=2e-5)
    np.testing.assert_allclose(tail, ref[:, 16:], atol=2e-5)


@pytest.mark.parametrize("seq", [16, 23])  # 23: query blocks of unequal length
def test_blocked_and_recomputed_attention_match_plain_attention_and_its_autodiff_gradients(seq):
    rng = np.random.default_rng(1)
    q, k, v, r = (rng.normal(size=(2, 3, seq, 8)).astype(np.float32) for _ in range(4))

    def build(_):
        qt, kt, vt = (tf.constant(a) for a in (q, k, v))
        bias = transformer._causal_bias(seq, seq, tf.float32)
        out = {}
        for name, attend in (("plain", transformer._attend), ("blocked", transformer._self_attend),
                             ("recomputed", transformer._self_attend_recomputed)):
            a = attend(qt, kt, vt, bias)
            out[name] = [a, *tf.gradients(tf.reduce_sum(a * r), [qt, kt, vt])]
        return out

    out = run(build, lambda x: {})
    for name in ("blocked", "recomputed"):
        for got, want in zip(out[name], out["plain"]):
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_gelu_gradient_matches_autodiff_of_gpt_2_simples_gelu():
    x = np.linspace(-6, 6, 101, dtype=np.float32)

    def build(_):
        xt = tf.constant(x)
        ref, ours = gpt_model.gelu(xt), transformer._gelu(xt)
        return ref, ours, tf.gradients(ref, xt)[0], tf.gradients(ours, xt)[0]

    ref, ours, ref_grad, grad = run(build, lambda x: {})
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-5)


def test_bf16_products_keep_the_loss_and_its_gradient_close_to_fp32():
    tokens = np.random.default_rng(2).integers(0, 97, size=(1, 64), dtype=np.int32)

    def build(x):
        losses = [-tf.reduce_mean(copy_head.token_logprob(tf, hparams(), x, transformer.Precision(p), recompute=True))
                  for p in ("fp32", "bf16")]
        wte = [v for v in tf.compat.v1.global_variables() if v.name == "model/wte:0"][0]
        return losses, [tf.gradients(loss, wte)[0] for loss in losses]

    (fp32, bf16), (g32, g16) = run(build, lambda x: {x: tokens})
    assert abs(bf16 - fp32) / fp32 < 0.01
    assert np.corrcoef(np.ravel(g32), np.ravel(g16))[0, 1] > 0.99
