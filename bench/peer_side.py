"""The peer's side of `make bench-peer`, run by .venv-peer's Python (torch + transformers; no project code).

    .venv-peer/bin/python bench/peer_side.py logits FOLDER IDS_JSON OUT_NPY
    .venv-peer/bin/python bench/peer_side.py generate FOLDER JOB_JSON
    .venv-peer/bin/python bench/peer_side.py train SHAPE_JSON PRECISION STEPS THREADS

logits: the exported folder's fp32 logits for the token ids, saved for the comparison.
generate: the job's prompts (text), drawn in batches with transformers' `generate` (KV cache,
do_sample, the same top_p, temperature and max new tokens, stopping at the end marker), left
padded; prints one JSON line: samples, finished titles (the end marker written after the prompt),
new tokens (rows x steps) and the seconds from loading the model to the last sample.
train: a plain PyTorch loop on transformers' GPT-2 of that shape (sdpa attention, no dropout, as
ours), AdamW at 1e-4, batch 1 x 1024 random tokens from seed 0, fp32 or bfloat16 autocast; one
warm-up step, then STEPS timed; prints one JSON line: tokens/s, the loss after them, peak RSS.
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


def train(shape_json: str, precision: str, steps: str, threads: str) -> None:
    import resource

    from transformers import GPT2Config, GPT2LMHeadModel

    shape, steps = json.loads(shape_json), int(steps)
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=shape["n_vocab"], n_positions=shape["n_ctx"], n_embd=shape["n_embd"],
                        n_layer=shape["n_layer"], n_head=shape["n_head"], activation_function="gelu_new",
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="sdpa")
    model = GPT2LMHeadModel(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    windows = torch.from_numpy(np.random.default_rng(0).integers(0, shape["n_vocab"], (steps + 1, 1, 1024)))

    def step(x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss)

    step(windows[0])
    start = time.perf_counter()
    for w in windows[1:]:
        loss = step(w)
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_s": round(steps * 1024 / seconds, 1), "loss": round(loss, 4),
                      "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))


if __name__ == "__main__":
    {"logits": logits, "generate": generate, "train": train}[sys.argv[1]](*sys.argv[2:])
