"""`make eval`: judge a model on titles it never saw (its `evaluate:` section is in pipeline.config).

    python -m pipeline.evaluate --config configs/default.yaml

Modules, in the order data flows: heldout (split by title hash, run the stages on the rest,
prompt with the held-out titles guided and unguided), token_scores (where a sample's log-prob
goes: keyword tokens against the rest), copy_test (own keywords against another title's), report
(-> eval.json, eval.md).
"""
from pipeline.evaluate.heldout import evaluate

__all__ = ["evaluate"]
