#!/usr/bin/env python3
"""Score IFEval response files with the OFFICIAL verifiers of lm-eval 0.4.13.

Imports lm_eval/tasks/ifeval/{utils,instructions_registry,instructions,
instructions_util}.py from the installed lm-eval package (set up by setup.sh)
and calls its own test_instruction_following_strict / _loose, exactly as
lm_eval's ifeval process_results does. No verifier logic lives in this file.

Usage:
  NLTK_DATA=... VENV/bin/python score.py --data input_data.jsonl \
      --responses responses-X.jsonl [--responses ...] --out DIR

Writes DIR/official-<X>.jsonl (one line per prompt, input order):
  {"key", "instruction_id_list", "strict": [bool..], "loose": [bool..]}
and prints prompt- and instruction-level strict/loose accuracy per file.
"""
import argparse
import json
import logging
import os
import random
import sys
import types


def import_official_ifeval():
    """Import lm_eval.tasks.ifeval.utils without running lm_eval/tasks/__init__.py.

    That __init__ pulls in TaskManager (datasets, evaluate, ...). The ifeval
    modules only need their own package path, so we register a bare
    `lm_eval.tasks` package pointing at the installed directory. The installed
    files themselves are not touched.
    """
    import lm_eval  # top-level __init__ is light (importlib.metadata only)

    tasks_dir = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")
    if "lm_eval.tasks" not in sys.modules:
        pkg = types.ModuleType("lm_eval.tasks")
        pkg.__path__ = [tasks_dir]
        sys.modules["lm_eval.tasks"] = pkg
    # instructions_util runs download_nltk_resources() at import: it first does
    # nltk.data.find("tokenizers/punkt_tab") and only downloads when that fails.
    # With NLTK_DATA pointing at the installed punkt_tab nothing is downloaded;
    # to be safe offline, make nltk.download raise instead of touching the net.
    import nltk

    nltk.data.find("tokenizers/punkt_tab/english/")  # fail early if data missing

    def _no_download(*a, **k):
        raise RuntimeError("nltk.download called offline; set NLTK_DATA (see setup.sh)")

    nltk.download = _no_download
    from lm_eval.tasks.ifeval import utils

    return lm_eval, utils


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="IFEval input_data.jsonl")
    ap.add_argument("--responses", action="append", required=True, help="responses-X.jsonl (repeatable)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for langdetect (language:response_language, change_case:*) and for "
        "Python random (re-seeded per prompt; used by build_description when a kwarg "
        "is unusable, e.g. letter '#' in keywords:letter_frequency). lm_eval leaves "
        "both unseeded, so a few verdicts vary run to run. -1 = leave unseeded.",
    )
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # keep stdout/stderr lines in order
    # lm_eval logs "Unable to detect language for text ..." with the whole text; clip it.
    logging.basicConfig(format="%(levelname)s %(name)s: %(message).160s")

    lm_eval, utils = import_official_ifeval()
    if args.seed >= 0:
        import langdetect

        langdetect.DetectorFactory.seed = args.seed  # applied on every detect() call
    from importlib.metadata import version

    print(f"lm_eval {version('lm_eval')} ifeval from {os.path.dirname(utils.__file__)}; "
          f"nltk {version('nltk')}; langdetect {version('langdetect')}; seed {args.seed}")

    docs = read_jsonl(args.data)
    os.makedirs(args.out, exist_ok=True)
    print(f"{'condition':<28} {'prompt_strict':>13} {'prompt_loose':>12} {'inst_strict':>11} {'inst_loose':>10}")
    for rpath in args.responses:
        resp = {r["key"]: r for r in read_jsonl(rpath)}
        missing = [d["key"] for d in docs if d["key"] not in resp]
        name = os.path.basename(rpath)
        if missing:
            print(f"{name}: SKIPPED, {len(missing)} of {len(docs)} prompts have no response", file=sys.stderr)
            continue
        name = name.removeprefix("responses-").removesuffix(".jsonl")
        rows = []
        for d in docs:
            r = resp[d["key"]]
            if args.seed >= 0:
                random.seed(f"{args.seed}:{d['key']}")  # order-independent, reproducible
            if r.get("prompt") is not None and r["prompt"] != d["prompt"]:
                print(f"warning: {name} key {d['key']}: prompt differs from input data", file=sys.stderr)
            # Same InputExample + calls as lm_eval's ifeval utils.process_results;
            # the official functions drop falsy kwargs themselves.
            inp = utils.InputExample(
                key=d["key"],
                instruction_id_list=d["instruction_id_list"],
                prompt=d["prompt"],
                kwargs=d["kwargs"],
            )
            strict = utils.test_instruction_following_strict(inp, r["response"])
            loose = utils.test_instruction_following_loose(inp, r["response"])
            rows.append(
                {
                    "key": d["key"],
                    "instruction_id_list": d["instruction_id_list"],
                    "strict": strict.follow_instruction_list,
                    "loose": loose.follow_instruction_list,
                }
            )
        with open(os.path.join(args.out, f"official-{name}.jsonl"), "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")

        def prompt_acc(k):
            return sum(all(row[k]) for row in rows) / len(rows)

        def inst_acc(k):  # = lm_eval's agg_inst_level_acc
            return utils.agg_inst_level_acc([row[k] for row in rows])

        print(f"{name:<28} {prompt_acc('strict'):>13.4f} {prompt_acc('loose'):>12.4f} "
              f"{inst_acc('strict'):>11.4f} {inst_acc('loose'):>10.4f}")


if __name__ == "__main__":
    main()
