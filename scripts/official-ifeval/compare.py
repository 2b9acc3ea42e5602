"""Compare spotlight's per-instruction IFEval verdicts with the official evaluator's.

usage: python compare.py OURS_DIR OFFICIAL_DIR
  OURS_DIR/scores-<name>.jsonl      written by `spotlight eval`
  OFFICIAL_DIR/official-<name>.jsonl written by score.py
Prints, per condition, how many instruction verdicts (strict and loose) differ and which
instruction ids they belong to; exits 1 when any verdict differs.
"""
import collections
import json
import pathlib
import sys


def load(path):
    return {d["key"]: d for d in map(json.loads, path.read_text().splitlines())}


def main(ours_dir, official_dir):
    ours_dir, official_dir = pathlib.Path(ours_dir), pathlib.Path(official_dir)
    differing = 0
    for official_path in sorted(official_dir.glob("official-*.jsonl")):
        name = official_path.stem[len("official-"):]
        ours_path = ours_dir / f"scores-{name}.jsonl"
        if not ours_path.exists():
            print(f"{name}: no {ours_path}")
            differing += 1
            continue
        ours, official = load(ours_path), load(official_path)
        if ours.keys() != official.keys():
            print(f"{name}: different prompt keys")
            differing += 1
            continue
        by_id = collections.Counter()
        verdicts = 0
        for key, o in official.items():
            u = ours[key]
            assert u["instruction_id_list"] == o["instruction_id_list"], key
            for mode in ("strict", "loose"):
                for iid, a, b in zip(o["instruction_id_list"], o[mode], u[f"follow_instruction_list_{mode}"]):
                    verdicts += 1
                    if a != b:
                        by_id[(mode, iid, key, "official" if a else "ours")] += 1
        differing += len(by_id)
        print(f"{name}: {verdicts} verdicts, {len(by_id)} differ")
        for (mode, iid, key, who), _ in sorted(by_id.items()):
            print(f"  {mode:6} {iid:45} key {key}: only {who} says followed")
    return 1 if differing else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
