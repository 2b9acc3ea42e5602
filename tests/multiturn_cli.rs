//! `spotlight multiturn` on the default model: the conversation files, the per-reply verdicts, the
//! report, pairing of the conditions (same conversations and user turns), resume after a torn
//! line, steering that changes replies, and errors for bad options.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

/// 3 conversations of `turns` turns, 24 tokens per reply.
fn multiturn_turns(out: &Path, turns: &str, extra: &[&str]) -> Output {
    let data = shared_dir().join("data/ifeval/input_data.jsonl");
    let _g = compute_lock();
    Command::new(bin())
        .args(["multiturn", "--model", model_path().to_str().unwrap()])
        .args(["--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args([
            "--conversations",
            "3",
            "--turns",
            turns,
            "--max-tokens",
            "24",
            "--threads",
            "2",
            "-q",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn multiturn(out: &Path, extra: &[&str]) -> Output {
    multiturn_turns(out, "3", extra)
}

#[test]
fn multiturn_writes_paired_conversations_and_a_report_and_resumes() {
    let dir = std::env::temp_dir().join(format!("spotlight-multiturn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = multiturn(&dir, &["--conditions", "baseline,spotlight:0.3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let base = read_jsonl(&dir.join("multiturn-baseline.jsonl"));
    let steered_path = dir.join("multiturn-spotlight-0.3-layer.jsonl");
    let steered = read_jsonl(&steered_path);
    assert_eq!((base.len(), steered.len()), (3, 3));
    let mut any_differs = false;
    for (b, s) in base.iter().zip(&steered) {
        assert_eq!(
            b["key"], s["key"],
            "conditions run the same conversations in the same order"
        );
        let (bt, st) = (b["turns"].as_array().unwrap(), s["turns"].as_array().unwrap());
        assert_eq!((bt.len(), st.len()), (3, 3));
        let first = bt[0]["user"].as_str().unwrap();
        assert!(
            first.ends_with("Keep to this rule in every reply of this conversation, not only in this one."),
            "{first}"
        );
        for (x, y) in bt.iter().zip(st) {
            assert_eq!(x["user"], y["user"], "the same user turns under both conditions");
            any_differs |= x["reply"] != y["reply"];
        }
        assert_ne!(
            bt[1]["user"], bt[2]["user"],
            "no follow-up task twice in a conversation"
        );
    }
    assert!(
        any_differs,
        "τ = 0.3 changed no reply of 9: steering did not reach the chat"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("multiturn.json")).unwrap()).unwrap();
    assert_eq!(
        (report["conversations"].as_u64(), report["turns"].as_u64()),
        (Some(3), Some(3))
    );
    let conditions = report["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 2);
    // the paired drop comparison is the difference of the two drops
    assert!(conditions[0]["drop_shrink_vs_baseline_pp"].is_null());
    let shrink = conditions[1]["drop_shrink_vs_baseline_pp"].as_f64().unwrap();
    let drops = (
        conditions[0]["drop_pp"].as_f64().unwrap(),
        conditions[1]["drop_pp"].as_f64().unwrap(),
    );
    assert!((shrink - (drops.0 - drops.1)).abs() < 1e-9, "{shrink} vs {drops:?}");
    for c in conditions {
        let turns = c["turns"].as_array().unwrap();
        assert_eq!(turns.len(), 3);
        for t in turns {
            let loose = t["loose"].as_f64().unwrap();
            // 3 conversations: every share is a multiple of 1/3
            assert!(((loose * 3.0) - (loose * 3.0).round()).abs() < 1e-9, "{t}");
        }
    }
    // every reply's verdict, keyed conversation/turn, adds up to the report's share per turn
    for (c, slug) in conditions.iter().zip(["baseline", "spotlight-0.3-layer"]) {
        let scores = read_jsonl(&dir.join(format!("scores-{slug}.jsonl")));
        let conversations = read_jsonl(&dir.join(format!("multiturn-{slug}.jsonl")));
        assert_eq!(scores.len(), 9, "3 conversations × 3 replies");
        for (i, s) in scores.iter().enumerate() {
            let conversation = &conversations[i / 3];
            assert_eq!(
                s["key"].as_str().unwrap(),
                format!("{}/t{}", conversation["key"], i % 3 + 1)
            );
            assert_eq!(s["instruction_id_list"][0], conversation["instruction_id"]);
        }
        for (t, stats) in c["turns"].as_array().unwrap().iter().enumerate() {
            let kept = scores
                .iter()
                .skip(t)
                .step_by(3)
                .filter(|s| s["follow_instruction_list_loose"][0] == true)
                .count();
            assert_eq!(
                kept as f64 / 3.0,
                stats["loose"].as_f64().unwrap(),
                "{slug} turn {}",
                t + 1
            );
        }
    }
    let md = std::fs::read_to_string(dir.join("multiturn.md")).unwrap();
    assert!(
        md.contains("## Compliance by turn (loose)") && md.contains("| spotlight:0.3:layer |"),
        "{md}"
    );

    // a torn last line: that conversation is computed again, the others are kept
    let text = std::fs::read_to_string(&steered_path).unwrap();
    let keep: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&steered_path, format!("{}\n{{\"key\": 1", keep.join("\n"))).unwrap();
    let out = multiturn(&dir, &["--conditions", "baseline,spotlight:0.3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = read_jsonl(&steered_path);
    assert_eq!(again.len(), 3);
    assert_eq!(again[..2], steered[..2], "finished conversations are not recomputed");
    assert_eq!(again[2]["key"], steered[2]["key"]);

    // score-only needs every conversation of every condition
    let out = multiturn(&dir, &["--conditions", "baseline,spotlight:0.1", "--score-only"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("multiturn-spotlight-0.1-layer.jsonl has 0 of 3 conversations"),
        "{err}"
    );

    // a repetition penalty: recorded per conversation, changes replies, never mixed on resume
    let base_path = dir.join("multiturn-baseline.jsonl");
    let text = std::fs::read_to_string(&base_path).unwrap();
    let two = text.lines().take(2).collect::<Vec<_>>().join("\n") + "\n";
    std::fs::write(&base_path, &two).unwrap();
    let out = multiturn(&dir, &["--conditions", "baseline", "--repeat-penalty", "1.3"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("was decoded with --max-tokens 24 --temp 0 --repeat-penalty 1, this run asks for --max-tokens 24 --temp 0 --repeat-penalty 1.3 (use another --out)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&base_path).unwrap(), two, "nothing added");
    let penalised_dir = dir.join("penalty");
    let out = multiturn(&penalised_dir, &["--conditions", "baseline", "--repeat-penalty", "1.3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let penalised = read_jsonl(&penalised_dir.join("multiturn-baseline.jsonl"));
    let decoded = |penalty: f64| serde_json::json!({"max_tokens": 24, "temp": 0.0, "repeat_penalty": penalty});
    assert!(base.iter().all(|c| c["decoding"] == decoded(1.0)));
    assert!(penalised.iter().all(|c| c["decoding"] == decoded(1.3)));
    let replies = |lines: &[serde_json::Value]| -> Vec<serde_json::Value> {
        lines
            .iter()
            .flat_map(|c| c["turns"].as_array().unwrap().iter().map(|t| t["reply"].clone()))
            .collect()
    };
    assert_ne!(replies(&penalised), replies(&base), "penalty 1.3 changed no reply");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn multiturn_refuses_bad_turn_counts_and_data_without_candidates() {
    let dir = std::env::temp_dir().join(format!("spotlight-multiturn-bad-{}", std::process::id()));
    let out = multiturn_turns(&dir, "1", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a conversation needs 2 to 17 user turns"), "{err}");

    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("two-rules.jsonl");
    std::fs::write(
        &data,
        r#"{"key": 7, "prompt": "Write a poem. Use no commas. Use lowercase.", "instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"], "kwargs": [{}, {}]}"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["multiturn", "--model", model_path().to_str().unwrap()])
        .args(["--data", data.to_str().unwrap(), "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no IFEval record with a single instruction"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
