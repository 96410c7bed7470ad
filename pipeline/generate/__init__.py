"""Stage 3, generate: bulk generation conditioned on category and keywords.

    python -m pipeline.generate --config configs/default.yaml

Modules, in the order data flows: prompts (prompt rows from a file or a cross product),
title_lengths (the length a guided title aims for), guidance (the `guidance:` section: keyword-
guided decoding as a logits hook), utf8 (the sampler finishes every character it begins),
sampler (the batched TensorFlow sampler), sampling (the pure loop: prompts in, texts out),
best_of (k candidates, the best kept), jobfile (the batch plan and the resumable output), pool
(the same job on Ray actors), stage (`run`: -> generated.jsonl).
"""
from pipeline.generate.guidance import GuidanceConfig
from pipeline.generate.prompts import Prompt, load_prompts, make_prompt
from pipeline.generate.sampler import SamplingSettings
from pipeline.generate.sampling import SamplingLoop
from pipeline.generate.stage import GenerateConfig, generate, plan_job, run

__all__ = ["GenerateConfig", "GuidanceConfig", "Prompt", "SamplingLoop", "SamplingSettings", "generate", "load_prompts", "make_prompt", "plan_job", "run"]
