//! `spotlight eval --limit 10` on the default model: files, report shape, resume, and batched
//! decoding equal to one-at-a-time decoding.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn eval(out: &Path, conditions: &str, parallel: &str) {
    let data = shared_dir().join("data/ifeval/input_data.jsonl");
    let _g = compute_lock();
    let status = Command::new(bin())
        .args([
            "eval",
            "--model",
            model_path().to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .args([
            "--limit",
            "10",
            "--max-tokens",
            "32",
            "--threads",
            "2",
            "--quiet",
            "--parallel",
            parallel,
        ])
        .args(["--conditions", conditions, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn eval_writes_responses_and_report_resumes_and_batches_like_solo() {
    let dir = std::env::temp_dir().join(format!("spotlight-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let conditions = "baseline,emphasis,static:1,spotlight:0.1,spotlight:0.1:head";
    eval(&dir, conditions, "4");

    for slug in [
        "baseline",
        "emphasis",
        "static-1",
        "spotlight-0.1-layer",
        "spotlight-0.1-head",
    ] {
        let lines = read_jsonl(&dir.join(format!("responses-{slug}.jsonl")));
        assert_eq!(lines.len(), 10, "{slug}: one response per prompt");
        for l in &lines {
            assert!(l["key"].is_i64() && l["prompt"].is_string() && l["response"].is_string());
        }
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let conds = report["conditions"].as_array().unwrap();
    assert_eq!(conds.len(), 5);
    for c in conds {
        for k in [
            "prompt_strict",
            "prompt_loose",
            "instruction_strict",
            "instruction_loose",
        ] {
            let v = c[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} = {v}");
        }
        assert_eq!(c["n"], 10);
        // looping replies and the passes without them; the subset without length constraints
        let looping = c["looping"]["share"].as_f64().unwrap();
        let not_looping = c["looping"]["prompt_loose_not_looping"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&looping) && not_looping <= c["prompt_loose"].as_f64().unwrap());
        assert!(c["length_free"]["prompts"].as_u64().unwrap() <= 10);
        // scores-<slug>.jsonl holds the per-prompt verdicts the accuracies are computed from
        let slug = c["name"].as_str().unwrap().replace(':', "-");
        let scores = read_jsonl(&dir.join(format!("scores-{slug}.jsonl")));
        assert_eq!(scores.len(), 10, "{slug}: one score line per prompt");
        let passed = |field: &str| scores.iter().filter(|s| s[field].as_bool().unwrap()).count() as f64 / 10.0;
        assert_eq!(
            passed("follow_all_instructions_loose"),
            c["prompt_loose"].as_f64().unwrap()
        );
        assert_eq!(
            passed("follow_all_instructions_strict"),
            c["prompt_strict"].as_f64().unwrap()
        );
        for s in &scores {
            let n = s["instruction_id_list"].as_array().unwrap().len();
            assert_eq!(s["follow_instruction_list_loose"].as_array().unwrap().len(), n);
            let all = s["follow_instruction_list_loose"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v == true);
            assert_eq!(s["follow_all_instructions_loose"].as_bool().unwrap(), all);
        }
        // the keys behind gain/damage are listed and agree with the counts
        if let Some(vs) = c["vs_baseline"].as_object() {
            for (keys, count) in [("gained_keys", "gain"), ("damaged_keys", "damage")] {
                assert_eq!(vs[keys].as_array().unwrap().len() as u64, vs[count].as_u64().unwrap());
            }
        }
    }
    let examples = std::fs::read_to_string(dir.join("examples.md")).unwrap();
    for c in conds.iter().filter(|c| c["vs_baseline"].is_object()) {
        let name = c["name"].as_str().unwrap();
        assert!(
            examples.contains(&format!("## {name}\n")),
            "examples.md has a section for {name}"
        );
        for key in c["vs_baseline"]["damaged_keys"].as_array().unwrap().iter().take(4) {
            assert!(
                examples.contains(&format!("- key {key} ")),
                "damaged prompt {key} is shown"
            );
        }
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| condition |") && md.contains("spotlight:0.1:head"));
    let png = image::open(dir.join("accuracy.png")).unwrap();
    assert_eq!((png.width(), png.height()), (800, 500));

    // --score-only rescoring: complete conditions give the same report; a condition without
    // responses is an error naming the file, and nothing is computed or written for it
    let report_before = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let score_only = |conditions: &str| {
        Command::new(bin())
            .args([
                "eval",
                "--score-only",
                "--quiet",
                "--model",
                model_path().to_str().unwrap(),
            ])
            .args([
                "--data",
                shared_dir().join("data/ifeval/input_data.jsonl").to_str().unwrap(),
            ])
            .args([
                "--limit",
                "10",
                "--conditions",
                conditions,
                "--out",
                dir.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let rescored = score_only(conditions);
    assert!(
        rescored.status.success(),
        "{}",
        String::from_utf8_lossy(&rescored.stderr)
    );
    assert_eq!(std::fs::read_to_string(dir.join("report.json")).unwrap(), report_before);
    let missing = score_only("baseline,spotlight:0.3");
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("--score-only") && err.contains("responses-spotlight-0.3-layer.jsonl") && err.contains("0 of 10"),
        "{err}"
    );
    assert!(!dir.join("responses-spotlight-0.3-layer.jsonl").exists());

    // resume: a torn last line and a missing response are redone, the rest is kept
    let path = dir.join("responses-spotlight-0.1-layer.jsonl");
    let full = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = full.lines().take(8).collect();
    std::fs::write(&path, format!("{}\n{{\"key\": 12", kept.join("\n"))).unwrap();
    let baseline_before = std::fs::read_to_string(dir.join("responses-baseline.jsonl")).unwrap();
    eval(&dir, conditions, "4");
    assert_eq!(
        std::fs::read_to_string(dir.join("responses-baseline.jsonl")).unwrap(),
        baseline_before
    );
    let resumed = read_jsonl(&path);
    assert_eq!(resumed.len(), 10);
    let decoding = serde_json::json!({"max_tokens": 32, "temp": 0.0, "repeat_penalty": 1.0});
    assert!(
        resumed.iter().all(|l| l["decoding"] == decoding),
        "every line records its decoding"
    );
    // adding replies decoded otherwise is refused and writes nothing; rescoring is not
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let _g = compute_lock();
    let other = Command::new(bin())
        .args(["eval", "--quiet", "--model", model_path().to_str().unwrap()])
        .args([
            "--data",
            shared_dir().join("data/ifeval/input_data.jsonl").to_str().unwrap(),
        ])
        .args(["--limit", "10", "--max-tokens", "32", "--repeat-penalty", "1.3"])
        .args(["--conditions", "spotlight:0.1", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    drop(_g);
    assert_eq!(other.status.code(), Some(1));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        err.contains("responses-spotlight-0.1-layer.jsonl: key ")
            && err.contains("was decoded with --max-tokens 32 --temp 0 --repeat-penalty 1, this run asks for --max-tokens 32 --temp 0 --repeat-penalty 1.3 (use another --out)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    eval(&dir, conditions, "4");
    let resumed = read_jsonl(&path);
    assert_eq!(resumed.len(), 10);
    let mut keys: Vec<i64> = resumed.iter().map(|l| l["key"].as_i64().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10, "no duplicate keys after resuming");

    // batched (4 sequences per batch) against one prompt at a time: the sequences have their own
    // KV streams, so only the batch shape of the weight matmuls differs. That moves logits by
    // rounding, which can flip a near-tie late in a greedy reply (measured: 1 of 20 here, after
    // 22 characters); steering leaking between sequences would change replies from the start.
    let solo = dir.join("solo");
    eval(&solo, "baseline,spotlight:0.1", "1");
    let (mut same, mut total) = (0, 0);
    for slug in ["baseline", "spotlight-0.1-layer"] {
        let a = read_jsonl(&dir.join(format!("responses-{slug}.jsonl")));
        let b = read_jsonl(&solo.join(format!("responses-{slug}.jsonl")));
        for l in &b {
            let batched = a.iter().find(|x| x["key"] == l["key"]).unwrap()["response"]
                .as_str()
                .unwrap();
            let alone = l["response"].as_str().unwrap();
            let common = batched.bytes().zip(alone.bytes()).take_while(|(x, y)| x == y).count();
            assert!(
                common >= 16 || batched == alone,
                "{slug}, key {}: batched and solo part at {common}",
                l["key"]
            );
            total += 1;
            same += usize::from(batched == alone);
        }
    }
    assert!(
        same + 2 >= total,
        "only {same} of {total} batched responses equal their solo runs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The committed records of the highlights used in the IFEval runs
/// (docs/results/ifeval-smollm2/annotations-rules-v1.jsonl, and the clause scope's in
/// docs/results/levers-smollm2/annotations-rules-v1-clause.jsonl) are what the annotator produces
/// today: changing a rule without a new rules version (and new records) fails here.
#[test]
fn committed_annotation_records_match_the_annotator() {
    for (scope, record) in [
        ("sentence", "docs/results/ifeval-smollm2/annotations-rules-v1.jsonl"),
        (
            "clause",
            "docs/results/levers-smollm2/annotations-rules-v1-clause.jsonl",
        ),
    ] {
        let data = shared_dir().join("data/ifeval/input_data.jsonl");
        let fresh = std::env::temp_dir().join(format!("spotlight-annotations-{scope}-{}.jsonl", std::process::id()));
        let out = Command::new(bin())
            .args([
                "annotate",
                "--ranges-only",
                "--scope",
                scope,
                "--data",
                data.to_str().unwrap(),
                "--output",
            ])
            .arg(&fresh)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(record);
        let committed = std::fs::read_to_string(&committed_path).unwrap();
        let fresh_text = std::fs::read_to_string(&fresh).unwrap();
        let _ = std::fs::remove_file(&fresh);
        let fresh = fresh_text;
        assert_eq!(committed.lines().count(), 541);
        // Compared as JSON values: the key order of a record depends on serde_json's features
        // (`preserve_order`, which a dependency may switch on), not on the annotator.
        for (i, (a, b)) in committed.lines().zip(fresh.lines()).enumerate() {
            let (a, b): (serde_json::Value, serde_json::Value) =
                (serde_json::from_str(a).unwrap(), serde_json::from_str(b).unwrap());
            assert_eq!(a, b, "line {} of {} differs", i + 1, committed_path.display());
            assert_eq!(
                a.get("scope").is_some(),
                scope == "clause",
                "only clause records name a scope"
            );
        }
        assert_eq!(committed.lines().count(), fresh.lines().count());
    }
}

/// `highlight=clause` steers toward the annotator's clause-scope highlights: where they equal the
/// sentence scope's (6 of the first 10 prompts) the replies are the same bit for bit, and where
/// they are tighter (4: keys 1005, 1019, 1021, 1069) the steering differs.
#[test]
fn clause_scope_condition_steers_its_own_highlights() {
    let dir = std::env::temp_dir().join(format!("spotlight-eval-clause-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    eval(&dir, "spotlight:0.2,spotlight:0.2:highlight=clause", "1");
    let sentence = read_jsonl(&dir.join("responses-spotlight-0.2-layer.jsonl"));
    let clause = read_jsonl(&dir.join("responses-spotlight-0.2-layer-highlight=clause.jsonl"));
    assert_eq!((sentence.len(), clause.len()), (10, 10));
    let tighter = [1005, 1019, 1021, 1069];
    let mut differ = 0;
    for s in &sentence {
        let key = s["key"].as_i64().unwrap();
        let c = clause.iter().find(|c| c["key"] == s["key"]).expect("same keys");
        assert_eq!(c["prompt"], s["prompt"], "key {key}: the prompt text is the same");
        if tighter.contains(&key) {
            differ += usize::from(c["response"] != s["response"]);
        } else {
            assert_eq!(c["response"], s["response"], "key {key}: same highlights, same reply");
        }
    }
    assert!(differ >= 2, "only {differ} of 4 tighter prompts replied differently");
    let _ = std::fs::remove_dir_all(&dir);
}
