"""Where each stage of one run reads and writes: every output file name is spelled here and nowhere else."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# In a model folder whose weights are random (pipeline.train.released): the base model folder, then the
# trained checkpoint folder (train copies it), so the report and `make eval` can say the model is untrained.
UNTRAINED_MARKER = "UNTRAINED.md"


@dataclass(frozen=True)
class RunPaths:
    """The files of one run, all under `run_dir` (data/runs/<config name>/, git-ignored).

    run_name: the model's folder inside the checkpoint folder (gpt-2-simple's `run_name`).
    """

    run_dir: Path
    run_name: str = "run1"

    @property
    def encoded(self) -> Path:
        return self.run_dir / "encoded.txt"

    @property
    def encode_stats(self) -> Path:
        return self.run_dir / "encode_stats.json"

    @property
    def scratch_model(self) -> Path:
        """A from-scratch base model, made from this run's training text (pipeline.train.model)."""
        return self.run_dir / "scratch_model"

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoint"

    @property
    def checkpoint(self) -> Path:
        """The trained model's folder: checkpoint, hparams.json, encoder.json, vocab.bpe, loss.csv."""
        return self.checkpoint_dir / self.run_name

    @property
    def untrained_marker(self) -> Path:
        """Present when the trained model started from random weights (pipeline.train.released)."""
        return self.checkpoint / UNTRAINED_MARKER

    @property
    def hf_export(self) -> Path:
        """The trained model in transformers' format (`python -m pipeline.hf`, pipeline.hf)."""
        return self.run_dir / "hf"

    @property
    def train_done(self) -> Path:
        return self.run_dir / "train.done"

    @property
    def generated(self) -> Path:
        return self.run_dir / "generated.jsonl"

    @property
    def generated_candidates(self) -> Path:
        """Best-of-n's rejected candidates (`generate.candidates` > 1), with their score and rank."""
        return self.run_dir / "generated.candidates.jsonl"

    @property
    def generate_stats(self) -> Path:
        return self.run_dir / "generate_stats.json"

    @property
    def decoded(self) -> Path:
        return self.run_dir / "decoded.csv"

    @property
    def decoded_rejected(self) -> Path:
        """Titles the decode keyword filter turned away (only while a filter is on)."""
        return self.run_dir / "decoded.rejected.csv"

    @property
    def decode_stats(self) -> Path:
        return self.run_dir / "decode_stats.json"

    @property
    def report_json(self) -> Path:
        return self.run_dir / "report.json"

    @property
    def report_md(self) -> Path:
        return self.run_dir / "report.md"

    @property
    def report_png(self) -> Path:
        return self.run_dir / "report.png"

    # `make eval` (pipeline.evaluate.heldout) writes these in its own run folder (data/runs/<config>-eval/).
    @property
    def eval_train_csv(self) -> Path:
        """The encode input's rows kept for training."""
        return self.run_dir / "eval_train.csv"

    @property
    def eval_test_csv(self) -> Path:
        """The encode input's held-out rows."""
        return self.run_dir / "eval_test.csv"

    @property
    def eval_prompts(self) -> Path:
        """Prompts made from held-out titles (category + keywords the encoder extracts)."""
        return self.run_dir / "eval_prompts.yaml"

    @property
    def eval_json(self) -> Path:
        return self.run_dir / "eval.json"

    @property
    def eval_md(self) -> Path:
        return self.run_dir / "eval.md"

    @property
    def section_dir(self) -> Path:
        """One JSON per stage's config slice, rewritten only when that slice changes (make prerequisites)."""
        return self.run_dir / ".config"
