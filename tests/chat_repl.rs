//! `spotlight chat` driven through a pseudo-terminal, as a person would use it.

mod common;

use common::*;
use expectrl::{ControlCode, Regex};
use std::process::Command;
use std::time::Duration;

fn spawn_chat(extra: &[&str]) -> expectrl::Session {
    let mut cmd = Command::new(bin());
    cmd.args([
        "chat",
        "--model",
        model_path().to_str().unwrap(),
        "--temp",
        "0",
        "--threads",
        "2",
        "--quiet",
    ]);
    cmd.args(extra);
    cmd.env(
        "SPOTLIGHT_CACHE",
        std::env::temp_dir().join(format!("spotlight-chat-{}", std::process::id())),
    );
    let mut session = expectrl::Session::spawn(cmd).expect("spawn spotlight chat");
    session.set_expect_timeout(Some(Duration::from_secs(120)));
    session
}

#[test]
fn span_from_turn_one_stays_steered_and_alpha_command_takes_effect() {
    let _g = compute_lock();
    let trace = std::env::temp_dir().join(format!("spotlight-chat-trace-{}.jsonl", std::process::id()));
    let mut p = spawn_chat(&[
        "--n-predict",
        "10",
        "--granularity",
        "head",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    p.expect("> ").unwrap();
    p.send_line("Always answer **in French**. Hello!").unwrap();
    p.expect("> ").unwrap();
    p.send_line("What is two plus two?").unwrap();
    p.expect("> ").unwrap();
    p.send_line("/alpha 0.3").unwrap();
    p.expect("τ = 0.3").unwrap();
    p.expect("> ").unwrap();
    p.send_line("And three plus three?").unwrap();
    p.expect("> ").unwrap();
    p.send_line("/spans").unwrap();
    p.expect("turn 1 (user): \"in French\"").unwrap();
    p.expect("> ").unwrap();
    p.send_line("/trace on").unwrap();
    p.expect("trace on").unwrap();
    p.send_line("Thanks!").unwrap();
    p.expect("[trace] span share").unwrap();
    p.expect("> ").unwrap();
    p.send_line("/nonsense").unwrap();
    p.expect("unknown command /nonsense").unwrap();
    p.send(ControlCode::EndOfTransmission).unwrap();
    p.expect(expectrl::Eof).unwrap();

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let turn = |n: i64| lines.iter().filter(move |l| l["turn"] == n).collect::<Vec<_>>();
    assert!(!turn(1).is_empty() && !turn(3).is_empty());
    assert!(turn(1)
        .iter()
        .all(|l| (l["alpha"].as_f64().unwrap() - 0.2).abs() < 1e-6));
    for line in turn(3) {
        assert!(
            (line["alpha"].as_f64().unwrap() - 0.3).abs() < 1e-6,
            "/alpha 0.3 applies to turn 3"
        );
        for layer in line["layers"].as_array().unwrap() {
            assert!(
                layer["units"].as_u64().unwrap() > 0,
                "turn-1 span visible in turn 3 (layer {})",
                layer["layer"]
            );
            let after_min = layer["after"]["min"].as_f64().unwrap();
            assert!(
                after_min >= 0.3 - 1e-4,
                "turn 3, layer {}: share {after_min} below τ",
                layer["layer"]
            );
        }
    }
}

#[test]
fn ctrl_c_stops_a_reply_without_leaving_the_repl() {
    let _g = compute_lock();
    let mut p = spawn_chat(&["--n-predict", "-1"]);
    p.expect("> ").unwrap();
    // a prompt whose greedy reply is long on every build tried (≥ 400 tokens; "count to one
    // thousand" ended after one sentence on an AVX2-only build)
    p.send_line("Write a long essay about the history of the Roman Empire, with many details.")
        .unwrap();
    // wait until the reply is streaming, then interrupt it
    p.expect(Regex("[a-z]{3,}")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("[stopped]").unwrap();
    p.expect("> ").unwrap();
    p.send_line("/help").unwrap();
    p.expect("commands:").unwrap();
    p.send(ControlCode::EndOfTransmission).unwrap();
    p.expect(expectrl::Eof).unwrap();
}
