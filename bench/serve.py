"""The title server under load: concurrent clients (batched together) against one request at a time.

    make bench-serve [CONFIG=configs/default.yaml]
    python -m bench.serve --config configs/default.yaml [--clients 16] [--requests 200] [--n 4] [section.key=value ...]

Starts the real server (`python -m pipeline.serve`, a uvicorn subprocess on 127.0.0.1 and a free
port) over the config's trained run (`make encode train` first), warms it up, then sends
requests made from the run's generation prompts (category and keywords, in turn):
  (a) concurrent: --requests requests of --n titles, sent by --clients threads at once;
  (b) sequential: the same requests, one at a time, from one client,
and prints each mode's p50/p95 latency, titles/s and errors, the batching gain (titles/s of a
over b, measured in this run), the mean requests per batch the server ran, and the server's
RSS after warm-up and at the end (growth must stay under 5 %). Requests carry no seed, so
the server may batch them (a request with a seed is drawn alone; docs/serving.md).
Only 127.0.0.1 is contacted; every loop is bounded. Figures go to bench/out/serve.json too.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from pipeline.config import load_config
from pipeline.generate import load_prompts

OUT = Path("bench/out/serve.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(config: str, overrides: list[str], port: int) -> tuple[subprocess.Popen, str]:
    """The server subprocess and its base URL, once /healthz answers (at most 180 s)."""
    cmd = [sys.executable, "-m", "pipeline.serve", "--config", config, *overrides, f"serve.port={port}"]
    proc = subprocess.Popen(cmd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench-serve: the server exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit("bench-serve: the server did not answer /healthz within 180 s")


def run_client(url: str, bodies: list[dict], latencies: list[float], errors: list[str]) -> None:
    """Send `bodies` one after another, appending each latency (s) or error."""
    with httpx.Client(base_url=url, timeout=120) as client:
        for body in bodies:
            start = time.perf_counter()
            try:
                r = client.post("/v1/titles", json=body)
                if r.status_code != 200 or len(r.json()["titles"]) != body["n"]:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    continue
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                continue
            latencies.append(time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def measure(url: str, per_client: list[list[dict]]) -> dict:
    """Run one client thread per list of bodies; latency percentiles (ms), titles/s and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    health0 = httpx.get(url + "/healthz").json()
    threads = [threading.Thread(target=run_client, args=(url, bodies, latencies, errors)) for bodies in per_client]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    health1 = httpx.get(url + "/healthz").json()
    titles = sum(b["n"] for bodies in per_client for b in bodies) - len(errors) * per_client[0][0]["n"]
    batches = health1["batches"] - health0["batches"]
    return {"requests": sum(map(len, per_client)), "clients": len(per_client), "seconds": round(seconds, 2),
            "p50_ms": round(1000 * percentile(latencies, 0.5), 1), "p95_ms": round(1000 * percentile(latencies, 0.95), 1),
            "titles_per_s": round(titles / seconds, 2), "errors": len(errors), "error_examples": errors[:3],
            "batches": batches, "requests_per_batch": round((health1["requests"] - health0["requests"]) / max(batches, 1), 2)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="requests in all, per mode")
    parser.add_argument("--n", type=int, default=4, help="titles per request")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if not cfg.paths.train_done.is_file():
        print(f"bench-serve: no trained model for {args.config} ({cfg.paths.train_done} is missing); "
              f"run `make encode train CONFIG={args.config}` first", file=sys.stderr)
        return 2
    # The request mix: the run's generation prompts (category and keywords), in turn.
    prompts = [p for p in load_prompts(cfg.generate) if p.category]
    proc, url = start_server(args.config, args.overrides, free_port())
    try:
        server = psutil.Process(proc.pid)
        rss_start = server.memory_info().rss
        bodies = [{"category": p.category, "keywords": list(p.keywords), "n": args.n}
                  for p in (prompts[i % len(prompts)] for i in range(args.requests))]
        measure(url, [bodies[:2 * args.clients]])  # warm-up: first-use allocations are not growth
        measure(url, [bodies[i::args.clients][:4] for i in range(args.clients)])
        rss_before = server.memory_info().rss
        concurrent = measure(url, [bodies[i::args.clients] for i in range(args.clients)])
        sequential = measure(url, [bodies])
        rss_after = server.memory_info().rss
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    growth = rss_after / rss_before - 1
    result = {"config": args.config, "n": args.n, "concurrent": concurrent, "sequential": sequential,
              "batching_gain": round(concurrent["titles_per_s"] / sequential["titles_per_s"], 2),
              "rss_mb": {"start": round(rss_start / 2**20, 1), "before": round(rss_before / 2**20, 1),
                         "after": round(rss_after / 2**20, 1)}, "rss_growth_pct": round(100 * growth, 2)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'mode':<12}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'titles/s':>10}{'errors':>8}{'req/batch':>11}")
    for name, m in (("concurrent", concurrent), ("sequential", sequential)):
        print(f"{name:<12}{m['requests']:>9}{m['p50_ms']:>9}{m['p95_ms']:>9}{m['titles_per_s']:>10}"
              f"{m['errors']:>8}{m['requests_per_batch']:>11}")
    print(f"batching gain (concurrent / sequential titles/s, same run): {result['batching_gain']}x "
          f"(goal >= 2.5x); load average {os.getloadavg()[0]:.2f} at the end")
    print(f"server RSS: {result['rss_mb']['start']} MB at start, {result['rss_mb']['before']} MB after warm-up, "
          f"{result['rss_mb']['after']} MB at the end ({result['rss_growth_pct']:+.2f} %)")
    ok = concurrent["errors"] == sequential["errors"] == 0 and growth < 0.05 and result["batching_gain"] > 1
    print("ok" if ok else "FAILED: errors, memory growth >= 5 % or no batching gain")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
