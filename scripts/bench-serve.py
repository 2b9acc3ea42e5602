"""Throughput and latency of `spotlight serve` at 1/4/8 concurrent clients, steered vs unsteered.

Usage: python3 scripts/bench-serve.py --base http://127.0.0.1:8080 [--tokens 48] [--rounds 2]
       [--label spotlight] [--json out.json]
Start the server first (e.g. `spotlight serve --parallel 8 -t 2 --port 8080`). Any other
OpenAI-compatible server (llama-server) can be measured the same way for a ratio in one run;
its unsteered column is the comparable one. Greedy, fixed max_tokens, a highlighted prompt per
client. Prints a Markdown table: aggregate generated tokens/s, and request latency p50/p90.
"""

import argparse
import concurrent.futures
import json
import statistics
import time
import urllib.request

TOPICS = ["the sea", "a cat", "winter", "a city", "music", "the moon", "bread", "a train"]


def request(base, i, tokens, steered):
    body = {
        "messages": [{"role": "user", "content": f"Write about {TOPICS[i % len(TOPICS)]}. **Use only lowercase letters.**"}],
        "temperature": 0,
        "max_tokens": tokens,
        "spotlight": {} if steered else {"alpha": 0},
    }
    req = urllib.request.Request(
        f"{base}/v1/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.load(r)
    return time.perf_counter() - start, out["usage"]["completion_tokens"]


def measure(base, clients, tokens, steered, rounds):
    n = clients * rounds
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda i: request(base, i, tokens, steered), range(n)))
    wall = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    generated = sum(r[1] for r in results)
    return {
        "clients": clients,
        "steered": steered,
        "requests": n,
        "tokens_per_s": generated / wall,
        "p50_s": statistics.median(latencies),
        "p90_s": latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2, help="requests per client")
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--label", default="spotlight serve")
    ap.add_argument("--json")
    args = ap.parse_args()
    request(args.base, 0, 4, True)  # warm-up
    rows = []
    for c in [int(x) for x in args.clients.split(",")]:
        for steered in (False, True):
            rows.append(measure(args.base, c, args.tokens, steered, args.rounds))
    print(f"| {args.label} | clients | requests | gen t/s | p50 s | p90 s | steered / unsteered t/s |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        base = next(x for x in rows if x["clients"] == r["clients"] and not x["steered"])
        ratio = r["tokens_per_s"] / base["tokens_per_s"]
        label = "steered" if r["steered"] else "unsteered"
        print(
            f"| {label} | {r['clients']} | {r['requests']} | {r['tokens_per_s']:.1f} | {r['p50_s']:.2f} | "
            f"{r['p90_s']:.2f} | {ratio:.2f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
