"""The peer's side of `make bench-peer`, run by .venv-peer's Python (torch + transformers; no project code).

    .venv-peer/bin/python bench/peer_side.py logits FOLDER IDS_JSON OUT_NPY
    .venv-peer/bin/python bench/peer_side.py generate FOLDER JOB_JSON

logits: the exported folder's fp32 logits for the token ids, saved for the comparison.
generate: the job's prompts (text), drawn in batches with transformers' `generate` (KV cache,
do_sample, the same top_p, temperature and max new tokens, stopping at the end marker), left
padded; prints one JSON line: samples, finished titles (the end marker written after the prompt),
new tokens (rows x steps) and the seconds from loading the model to the last sample.
"""
import json
import sys
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

END = "<|endoftext|>"


def logits(folder: str, ids_json: str, out: str) -> None:
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = json.load(open(ids_json))
    with torch.no_grad():
        np.save(out, model(torch.tensor([ids])).logits[0].numpy())


def generate(folder: str, job_json: str) -> None:
    job = json.load(open(job_json))
    torch.set_num_threads(job["threads"])
    torch.manual_seed(job["seed"])
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    tok.pad_token, tok.padding_side = END, "left"
    finished = tokens = 0
    prompts = job["prompts"]
    for at in range(0, len(prompts), job["batch_size"]):
        batch = prompts[at: at + job["batch_size"]]
        enc = tok(batch, return_tensors="pt", padding=True, split_special_tokens=True)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, top_p=job["top_p"] or 1.0, temperature=job["temperature"],
                                 top_k=0, max_new_tokens=job["length"], stop_strings=[END], tokenizer=tok,
                                 pad_token_id=tok.convert_tokens_to_ids(END))
        new = out[:, enc["input_ids"].shape[1]:]
        tokens += int(new.numel())
        for row in new:
            finished += END in tok.decode(row)
    print(json.dumps({"samples": len(prompts), "finished": finished, "tokens": tokens,
                      "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    {"logits": logits, "generate": generate}[sys.argv[1]](*sys.argv[2:])
