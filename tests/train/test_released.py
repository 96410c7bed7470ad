"""pipeline.train.released without writing 124M weights (issue 22): GPT-2's committed vocabulary, the
refusal to replace real weights, and how train tells an untrained base apart. The model itself, end to
end at 124M, is tests/train/test_released_shape.py."""
import json

import pytest

from pipeline.core.errors import InputError
from pipeline.core.paths import UNTRAINED_MARKER
from pipeline.train.released import BPE_DIR, BPE_SHA256, check_out, copy_bpe, main, write_untrained

# Titles as the format writes them, with the contractions and punctuation GPT-2's pre-tokeniser splits.
TEXT = ("<|startoftext|>~`askreddit~^skill kid~@What's a skill you learned as a kid that still pays off today?"
        "<|endoftext|>\n<|startoftext|>~`aww~^Big-Bird~@I'm 100% sure: Big Bird's café isn't open…<|endoftext|>\n")


def test_the_committed_vocabulary_is_gpt2s(tmp_path):
    from gpt_2_simple.src import encoder
    from tokenizers import ByteLevelBPETokenizer

    copy_bpe(tmp_path)
    vocab = json.loads((tmp_path / "encoder.json").read_text(encoding="utf-8"))
    assert len(vocab) == 50257 and vocab["<|endoftext|>"] == 50256
    enc = encoder.get_encoder(str(tmp_path))
    assert len(enc.bpe_ranks) == 50000  # gpt-2-simple reads the merges between the header and the last newline
    assert enc.encode("Hello world") == [15496, 995] and enc.encode(" dog") == [vocab["Ġdog"]]
    # train's fast tokenizer gives the same ids on GPT-2's vocabulary (else it falls back to the slow one).
    fast = ByteLevelBPETokenizer(str(tmp_path / "encoder.json"), str(tmp_path / "vocab.bpe"), add_prefix_space=False)
    assert fast.encode(TEXT).ids == enc.encode(TEXT)
    assert enc.decode(enc.encode(TEXT)) == TEXT


def test_a_changed_vocabulary_file_is_refused(tmp_path):
    source = tmp_path / "bpe"
    source.mkdir()
    for name in BPE_SHA256:
        (source / name).write_bytes((BPE_DIR / name).read_bytes())
    with (source / "vocab.bpe").open("a", encoding="utf-8") as f:
        f.write("a b\n")
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="vocab.bpe.*sha256"):
        copy_bpe(tmp_path / "out", source)


def test_real_weights_are_never_replaced(tmp_path, capsys):
    check_out(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty")
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / UNTRAINED_MARKER).write_text("random")
    (earlier / "model.ckpt.index").write_text("x")
    check_out(earlier)  # an earlier untrained model may be replaced
    real = tmp_path / "124M"
    real.mkdir()
    (real / "model.ckpt.index").write_text("real")
    with pytest.raises(InputError, match="may hold real weights"):
        write_untrained("124M", real)
    assert main(["--shape", "124M", "--out", str(real)]) == 2
    assert "released: error:" in capsys.readouterr().err and (real / "model.ckpt.index").read_text() == "real"
    with pytest.raises(InputError, match="--shape"):
        write_untrained("774M", tmp_path / "x")


def test_train_tells_an_untrained_base_apart(tmp_path):
    from pipeline.train.model import BaseModel
    from pipeline.train.stage import _base_identity, _drop_stale_checkpoint

    base = BaseModel(tmp_path / "models", "124M")
    base.path.mkdir(parents=True)
    # Without the marker the identity is what it always was, so existing checkpoints still resume.
    assert _base_identity(base) == {"model": "124M", "source": None}
    (base.path / UNTRAINED_MARKER).write_text("random weights")
    ckpt = tmp_path / "checkpoint" / "run1"
    _drop_stale_checkpoint(ckpt, base)
    assert (ckpt / UNTRAINED_MARKER).read_text() == "random weights"
    (ckpt / "model-2.index").write_text("x")
    # The real weights put in the same folder later: the checkpoint of the random ones starts afresh.
    (base.path / UNTRAINED_MARKER).unlink()
    _drop_stale_checkpoint(ckpt, base)
    assert not (ckpt / "model-2.index").exists() and not (ckpt / UNTRAINED_MARKER).exists()
