"""Stage 2, train: fine-tune GPT-2 (released, or a small one from scratch) in gpt-2-simple's layout.

    python -m pipeline.train --config configs/default.yaml

Modules, in the order data flows: model (the `model:` section: a base model in the layout
gpt-2-simple reads, and the helpers that read its hyper-parameters), validation (held-out
documents, validation loss, early stopping), log (dataset tokens, step counter, loss.csv), loop
(the training session: our own step in place of gpt-2-simple's finetune), stage (`run`: the
`train:` section -> checkpoint + train.done). Beside them, not imported here:
released (`python -m pipeline.train.released`: an UNTRAINED GPT-2 of a released size, random weights with
GPT-2's own vocabulary from gpt2_bpe/, in OpenAI's layout, for running every stage at that shape offline).
"""
from pipeline.train.log import TRAINED_CATEGORIES
from pipeline.core.gpt2 import load_hparams
from pipeline.train.model import ModelConfig, session_config
from pipeline.train.stage import TrainConfig, run, train

__all__ = ["ModelConfig", "TRAINED_CATEGORIES", "TrainConfig", "load_hparams", "run", "session_config", "train"]
