#!/usr/bin/env python3
"""The GPU check's measurements (issue #14), driven by scripts/gpu-check.sh on the GPU machine.

Needs only Python 3 (no packages) and the carried `spotlight` binary. Subcommands:
  golden BIN MODEL GOLDEN OUT   unsteered/steered greedy tokens on the GPU (-ngl 99) vs the CPU
                                (-ngl 0) of the same binary and vs the reference; steered span
                                shares from --trace must reach tau within 1e-3 in every layer
  splits BIN MODEL OUT          graph splits and the backend of every node, steered vs unsteered
                                (GGML_SCHED_DEBUG=2 with -v), plus llama.cpp's compute buffers
Each prints a report and exits non-zero when a hard check fails.
"""
import json
import os
import re
import subprocess
import sys
import time

TOL = 1e-3
RUNS = [
    ("none", ["--no-steer"], None),
    ("0.2,layer", ["--alpha", "0.2", "--granularity", "layer"], 0.2),
    ("0.1,head", ["--alpha", "0.1", "--granularity", "head"], 0.1),
]
COMMON = ["--temp", "0", "--n-predict", "48", "--ctx-size", "2048", "--batch-size", "512",
          "--flash-attn", "off", "--json"]


def run(cmd, env=None, check=True):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    return p, time.time() - t0


def prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def golden(bin_, model, golden_path, out):
    ref = json.load(open(golden_path))
    ok = True
    print("## Greedy tokens (48 at most): GPU (-ngl 99) vs CPU (-ngl 0, same binary) vs reference\n")
    print("| run | case | GPU = CPU | GPU = reference | CPU = reference | first token GPU/CPU/ref |")
    print("| --- | --- | --- | --- | --- | --- |")
    traces = []
    for name, extra, tau in RUNS:
        for case in ref["runs"][name]["cases"]:
            user = case["user"]
            outs = {}
            for dev, ngl in (("gpu", "99"), ("cpu", "0")):
                args = [bin_, "run", "--model", model, "--n-gpu-layers", ngl] + COMMON + extra
                if dev == "cpu":
                    args += ["--threads", str(min(os.cpu_count() or 2, 16))]
                trace = None
                if dev == "gpu" and tau is not None and case["span_token_positions"]:
                    trace = os.path.join(out, f"trace-{name.replace(',', '-')}-{case['name']}.jsonl")
                    args += ["--trace", trace]
                p, dt = run(args + [user])
                outs[dev] = json.loads(p.stdout)
                outs[dev]["_s"] = dt
                if trace:
                    traces.append((name, case["name"], tau, trace))
            g, c, r = outs["gpu"]["tokens"], outs["cpu"]["tokens"], case["greedy_tokens"]
            n = min(len(g), len(c))

            def agree(a, b):
                k = prefix(a, b)
                return "yes" if a == b[: len(a)] or b == a[: len(b)] else f"first {k} of {min(len(a), len(b))}"

            print(f"| {name} | {case['name']} | {agree(g, c)} | {agree(g, r)} | {agree(c, r)} "
                  f"| {g[0]}/{c[0]}/{r[0]} |")
            if outs["gpu"]["prompt_tokens"] != case["prompt_tokens"]:
                print(f"FAIL {name}/{case['name']}: prompt tokens differ from the reference")
                ok = False
            if g[0] != c[0]:
                ok = False
            with open(os.path.join(out, "golden-runs.jsonl"), "a") as f:
                f.write(json.dumps({"run": name, "case": case["name"], "gpu": outs["gpu"], "cpu": outs["cpu"],
                                    "reference": r, "n_compared": n}) + "\n")
    print()
    print("## Steered span shares on the GPU (--trace): every steered layer must reach tau within 1e-3\n")
    print("| run | case | ubatches | layers with span | min share before | min share after | worst after − tau | result |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, case, tau, trace in traces:
        lines = [json.loads(l) for l in open(trace) if l.strip()]
        n_layers, mins_b, mins_a, worst, bad = 0, [], [], 0.0, []
        for line in lines:
            for layer in line["layers"]:
                if not layer["units"]:
                    continue
                n_layers += 1
                mins_b.append(layer["before"]["min"])
                if layer["after"] is None:
                    bad.append((line["step"], layer["layer"], "no after"))
                    continue
                a = layer["after"]["min"]
                mins_a.append(a)
                worst = min(worst, a - tau)
                if a < tau - TOL:
                    bad.append((line["step"], layer["layer"], a))
        res = "PASS" if not bad and n_layers else f"FAIL {bad[:3]}"
        ok &= res == "PASS"
        print(f"| {name} | {case} | {len(lines)} | {n_layers} | {min(mins_b, default=float('nan')):.4f} "
              f"| {min(mins_a, default=float('nan')):.6f} | {worst:+.2e} | {res} |")
    print()
    return ok


SPLIT = re.compile(r"^## SPLIT #(\d+): (\S+) # (\d+) inputs")
# "node #%3d (%10.10s): %20.20s (%5.5s) [%5.5s %8.8s] ..." (ggml-backend.cpp): fixed widths, names may hold spaces
NODE = re.compile(r"^node #\s*(\d+) \((.{10})\): (.{20}) \((.{5})\) \[(.{5}) ")
BUF = re.compile(r"(\S+) compute buffer size (?:=|is|of) +([0-9.]+) MiB")
GRAPH_SPLITS = re.compile(r"graph splits = (.*)")


def sched(bin_, model, extra, prompt):
    env = dict(os.environ, GGML_SCHED_DEBUG="2")
    args = [bin_, "run", "--model", model, "--n-gpu-layers", "99", "--temp", "0", "--n-predict", "3",
            "--ctx-size", "2048", "--flash-attn", "off", "-v"] + extra + [prompt]
    p, _ = run(args, env=env)
    graphs, cur = [], None
    bufs, reserve = {}, []
    for line in p.stderr.splitlines():
        line = line.strip()
        m = SPLIT.match(line)
        if m:
            if m.group(1) == "0":
                cur = {"splits": [], "cpu_ops": {}, "nodes": 0}
                graphs.append(cur)
            cur["splits"].append(m.group(2))
            continue
        m = NODE.match(line)
        if m and cur is not None:
            cur["nodes"] += 1
            op, backend = m.group(2).strip(), m.group(5).strip()
            if not backend.startswith("CUDA"):
                cur["cpu_ops"][op] = cur["cpu_ops"].get(op, 0) + 1
            continue
        m = BUF.search(line)
        if m:
            bufs[m.group(1)] = max(bufs.get(m.group(1), 0.0), float(m.group(2)))
        m = GRAPH_SPLITS.search(line)
        if m:
            reserve.append(m.group(1))
    return graphs, bufs, reserve, p.stderr


def splits(bin_, model, out):
    prompt = "Write a short poem about the sea. **Use only lowercase letters.**"
    ok = True
    res = {}
    for label, extra in (("unsteered (--no-steer)", ["--no-steer"]),
                         ("steered layer tau=0.2", ["--alpha", "0.2", "--granularity", "layer"]),
                         ("steered head tau=0.1", ["--alpha", "0.1", "--granularity", "head"]),
                         ("steered layer + trace", ["--alpha", "0.2", "--trace", os.path.join(out, "trace-splits.jsonl")])):
        graphs, bufs, reserve, log = sched(bin_, model, extra, prompt)
        with open(os.path.join(out, "sched-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".log"), "w") as f:
            f.write(log)
        res[label] = (graphs, bufs, reserve)
    print("## Graph splits on CUDA (GGML_SCHED_DEBUG=2), one entry per scheduled graph\n")
    print("| run | splits per graph (backends) | nodes per graph | nodes not on CUDA (op: count) | llama.cpp: graph splits | compute buffers (MiB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = None
    for label, (graphs, bufs, reserve) in res.items():
        sp = sorted({(len(g["splits"]), ",".join(dict.fromkeys(g["splits"]))) for g in graphs})
        cpu = {}
        for g in graphs:
            for op, n in g["cpu_ops"].items():
                cpu[op] = max(cpu.get(op, 0), n)
        nodes = sorted({g["nodes"] for g in graphs})
        print(f"| {label} | {sp} | {nodes} | {cpu or '-'} | {'; '.join(reserve)} | "
              f"{', '.join(f'{k} {v:.2f}' for k, v in sorted(bufs.items()))} |")
        n_max = max((len(g["splits"]) for g in graphs), default=0)
        if base is None:
            base = (n_max, cpu)
        else:
            if n_max > base[0]:
                print(f"FAIL {label}: {n_max} splits, unsteered has {base[0]}")
                ok = False
            extra_cpu = {op: n for op, n in cpu.items() if n > base[1].get(op, 0)}
            if extra_cpu:
                print(f"FAIL {label}: steering ops not on CUDA: {extra_cpu}")
                ok = False
        if not graphs:
            print(f"FAIL {label}: no scheduler debug output (GGML_SCHED_DEBUG ignored?)")
            ok = False
    print()
    return ok


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "golden" and len(sys.argv) == 6:
        sys.exit(0 if golden(*sys.argv[2:]) else 1)
    if what == "splits" and len(sys.argv) == 5:
        sys.exit(0 if splits(*sys.argv[2:]) else 1)
    sys.exit(__doc__)
