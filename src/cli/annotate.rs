//! `spotlight annotate`: mark the constraint sentences of IFEval prompts, with a report of
//! prompts where a rule found nothing.

use super::args::AnnotateArgs;
use anyhow::Context as _;
use spotlight::eval::annotate::{annotate_in, to_markup, Scope, RULES_VERSION};
use spotlight::eval::ifeval::load_prompts;
use std::io::Write;

fn hex_sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn annotate(args: &AnnotateArgs) -> anyhow::Result<()> {
    let prompts = load_prompts(&args.data)?;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?,
    );
    let (mut pairs, mut found) = (0usize, 0usize);
    let mut missing = Vec::new();
    for p in &prompts {
        let a = annotate_in(args.scope, &p.key, &p.prompt, &p.instruction_id_list, &p.kwargs);
        pairs += p.instruction_id_list.len();
        found += p.instruction_id_list.len() - a.unmatched.len();
        if !a.unmatched.is_empty() {
            missing.push(format!("{}: {}", p.key, a.unmatched.join(", ")));
        }
        let v = if args.ranges_only {
            let ranges: Vec<serde_json::Value> = a
                .spans
                .iter()
                .zip(&a.reasons)
                .map(|(r, ids)| serde_json::json!({"start": r.start, "end": r.end, "instruction_ids": ids}))
                .collect();
            let mut v = serde_json::json!({
                "key": p.key,
                "prompt_sha256": hex_sha256(&p.prompt),
                "rules_version": RULES_VERSION,
                "highlights": ranges,
                "unmatched": a.unmatched,
            });
            // sentence scope's records stay as rules v1 wrote them (committed ones compare equal)
            if args.scope != Scope::Sentence {
                v["scope"] = serde_json::json!(args.scope.to_string());
            }
            v
        } else {
            let highlights: Vec<&str> = a.spans.iter().map(|r| &p.prompt[r.clone()]).collect();
            let mut v = serde_json::to_value(p)?;
            v["prompt_marked"] = serde_json::json!(to_markup(&p.prompt, &a.spans));
            v["highlights"] = serde_json::json!(highlights);
            v["rules_version"] = serde_json::json!(RULES_VERSION);
            v["scope"] = serde_json::json!(args.scope.to_string());
            v
        };
        writeln!(out, "{v}")?;
    }
    out.flush()?;
    println!(
        "{} prompts, rules v{RULES_VERSION}, {} scope: a span for {found} of {pairs} instructions ({:.1}%)",
        prompts.len(),
        args.scope,
        100.0 * found as f64 / pairs.max(1) as f64
    );
    if missing.is_empty() {
        println!("every instruction got a span");
    } else {
        println!("no span found (key: instruction ids):");
        for m in missing {
            println!("  {m}");
        }
    }
    Ok(())
}
