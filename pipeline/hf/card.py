"""What an export says about itself: config.json, generation_config.json and the model card README.md."""
from __future__ import annotations

from pipeline.core.format import END_TOKEN, build_prefix


def config_json(hparams: dict, eos_id: int) -> dict:
    """transformers' GPT2Config of gpt-2-simple's `hparams` (its GELU is the tanh one, its LayerNorm eps 1e-5)."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": hparams["n_vocab"], "n_positions": hparams["n_ctx"], "n_ctx": hparams["n_ctx"],
        "n_embd": hparams["n_embd"], "n_layer": hparams["n_layer"], "n_head": hparams["n_head"], "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "initializer_range": 0.02,
        "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "scale_attn_weights": True,
        "tie_word_embeddings": True, "use_cache": True, "bos_token_id": eos_id, "eos_token_id": eos_id,
        "torch_dtype": "float32",
    }


def generation_config(eos_id: int, sampling: dict | None) -> dict:
    """The run's sampling settings (temperature, top_k, top_p, max_new_tokens) for transformers' generate.

    top_p 0 and top_k 0 mean "off" here, as in the generate section; a title ends at the text
    `<|endoftext|>` (stop_strings), which the training text spells with ordinary tokens.
    """
    gen = {"bos_token_id": eos_id, "eos_token_id": eos_id, "pad_token_id": eos_id, "do_sample": True,
           "stop_strings": [END_TOKEN]}
    if sampling:
        gen |= {"temperature": sampling["temperature"], "top_k": sampling["top_k"],
                "top_p": sampling["top_p"] or 1.0, "max_new_tokens": sampling["max_new_tokens"]}
    return gen


def tokenizer_config(n_ctx: int) -> dict:
    """What AutoTokenizer reads beside vocab.json and merges.txt: GPT-2's tokenizer, end token as bos/eos/unk."""
    return {"tokenizer_class": "GPT2Tokenizer", "model_max_length": n_ctx, "add_prefix_space": False,
            "bos_token": END_TOKEN, "eos_token": END_TOKEN, "unk_token": END_TOKEN}


def model_card(hparams: dict, done: dict | None, stats: dict | None, categories: list | None,
               untrained: bool, run: str | None) -> str:
    """README.md: base model, data, training, the prompt format with an example, and what the weights do not hold."""
    lines = []
    if untrained:
        lines += ["# UNTRAINED: RANDOM WEIGHTS", "",
                  "**This model started from UNTRAINED random weights (pipeline.train.released), not OpenAI's GPT-2. "
                  "Anything sampled from it is noise.**", ""]
    lines += [f"# keyword-titles GPT-2{f' ({run})' if run else ''}", "",
              "A GPT-2 that writes Reddit submission titles for a category and keywords, trained with "
              "gpt-2-simple by the keyword-titles pipeline and exported to transformers' format "
              "(`python -m pipeline.hf`).", "",
              "## Model", "",
              f"GPT-2 architecture: {hparams['n_layer']} layers, {hparams['n_head']} heads, width "
              f"{hparams['n_embd']}, context {hparams['n_ctx']}, vocabulary {hparams['n_vocab']}."]
    if done:
        base = done.get("config", {}).get("model", {})
        kind = base.get("kind", "?")
        what = {"scratch": "none: a small GPT-2 made from scratch, its BPE vocabulary trained on the run's text",
                "released": f"OpenAI's GPT-2 {base.get('released')}", "hf": f"a transformers folder ({base.get('hf_dir')})"}
        lines += ["", f"Base model: {what.get(kind, kind)}" + (" (UNTRAINED random weights)" if untrained else "") + "."]
    else:
        lines += ["", "Not trained by this project's train stage (no train.done): the exported folder's own weights."]
    lines += ["", "## Data", ""]
    if stats:
        lines.append(f"{stats.get('rows_encoded', '?')} titles encoded into {stats.get('documents_written', '?')} "
                     f"training documents (from {stats.get('input', '?')}).")
    else:
        lines.append("No encode statistics were found for this run.")
    if categories:
        lines.append(f"Categories ({len(categories)}): " + ", ".join(f"`{c}`" for c in categories) + ".")
    if done:
        val = done.get("validation") or {}
        lines += ["", "## Training", "",
                  f"Steps: {done.get('steps')}; final training loss {done.get('final_loss')} "
                  f"(running average {done.get('final_avg_loss')})."]
        if val:
            lines.append(f"Validation loss: best {val.get('best_loss')} at step {val.get('best_step')}, last "
                         f"{val.get('last_loss')}; the weights are those of step {val.get('weights_from_step')}.")
    example = build_prefix((categories or ["aww"])[0], ["dog", "Big Bird"])
    lines += ["", "## Prompt format", "",
              "Each training document is one line: start marker, category, keywords, title, end marker. "
              "Prompt with everything up to the title marker and sample until the text `<|endoftext|>`:", "",
              f"    {example}", "",
              "The markers are spelled with ordinary BPE tokens (gpt-2-simple's encoder): tokenize prompts "
              "with `split_special_tokens=True`, and stop on the string (generation_config.json's stop_strings), "
              "not on the end token's id.", "",
              "## What the weights do not hold", "",
              "Keyword guidance (steering each title toward the keywords it has not written yet) lives in the "
              "keyword-titles sampler (pipeline.generate), not in these weights: sampled with transformers alone, "
              "the model often leaves requested keywords out.", ""]
    return "\n".join(lines)
