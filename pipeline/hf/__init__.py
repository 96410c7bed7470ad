"""Models in and out of the Hugging Face `transformers` format, without torch.

    python -m pipeline.hf --config configs/default.yaml     # a trained run -> data/runs/<run>/hf/

Modules, in the order data flows: names (gpt-2-simple's TF variable names and shapes <-> transformers'
GPT-2 parameter names and layouts), card (the model card README.md, config.json and
generation_config.json of an export), to_hf (`export_hf`: a gpt-2-simple model folder ->
config.json, model.safetensors, vocab.json, merges.txt, written with safetensors' numpy API),
from_hf (`import_hf`: a transformers GPT-2 folder -> the layout gpt-2-simple reads, under
`<models_dir>/hf-<digest>/`, for `model.kind: hf`). See docs/models.md.
"""
from pipeline.hf.from_hf import import_hf
from pipeline.hf.to_hf import export_hf, export_run

__all__ = ["export_hf", "export_run", "import_hf"]
