//! `spotlight multiturn`: the multi-turn compliance measurement (issue #17, the paper's MT-IFEval
//! claim). Each conversation runs through `Chat`, so the KV cache of earlier turns is reused and
//! the turn-1 highlights stay steered while the model answers later turns. Replies are written as
//! they arrive (`multiturn-<condition>.jsonl`, one line per finished conversation; a rerun resumes),
//! then scored against the turn-1 instruction (`scores-<condition>.jsonl`, one line per reply) and
//! reported per turn.

use super::args::ModelArgs;
use anyhow::{bail, Context as _};
use clap::Args;
use spotlight::eval::condition::{parse_conditions, Condition};
use spotlight::eval::data;
use spotlight::eval::key::Key;
use spotlight::eval::multiturn::report::{build, render_markdown, ConditionTurns};
use spotlight::eval::multiturn::{build_set, check_reply, Conversation, TurnVerdict};
use spotlight::eval::responses::Decoding;
use spotlight::llama::{ChatTemplate, ContextParams, FlashAttn};
use spotlight::spotlight::markup::{self, Highlighted};
use spotlight::spotlight::markup_writer::to_markup;
use spotlight::spotlight::{Chat, GenerateOptions, Session};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct MultiturnArgs {
    /// IFEval-format JSONL; turn-1 prompts are its single-instruction records of the kinds that
    /// can hold for any reply (highlights from the data or the annotator).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Comma-separated, as for `eval`: baseline, emphasis,
    /// spotlight:τ[:head|layer][:prefill=τ][:decode=τ][:layers=A-B], static:b.
    #[arg(long, default_value = "baseline,spotlight:0.2")]
    pub conditions: String,
    /// Conversations (a seeded subset of the candidates; all of them if there are fewer).
    #[arg(long, default_value_t = 80)]
    pub conversations: usize,
    /// User turns per conversation: turn 1 with the instruction, then new tasks.
    #[arg(long, default_value_t = 4)]
    pub turns: usize,
    /// Maximum tokens per reply.
    #[arg(long, default_value_t = 160)]
    pub max_tokens: usize,
    /// Repetition penalty over the last 64 tokens (1.0 = off), with greedy decoding. Each
    /// conversation's line records its decoding (with --max-tokens), and adding conversations
    /// decoded otherwise is refused.
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Seed of the subset, the follow-up tasks and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(short = 'c', long, default_value_t = 4096)]
    pub ctx_size: u32,
    /// Only score the replies already in --out (no model computation).
    #[arg(long)]
    pub score_only: bool,
    /// Output directory (multiturn-*.jsonl, scores-*.jsonl, multiturn.md, multiturn.json); reruns
    /// resume.
    #[arg(short = 'o', long, default_value = "multiturn-out")]
    pub out: PathBuf,
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TurnLine {
    user: String,
    reply: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ConversationLine {
    key: Key,
    instruction_id: String,
    /// As in `eval`'s responses lines; absent in files written before it was recorded (those
    /// lines are not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decoding: Option<Decoding>,
    turns: Vec<TurnLine>,
}

/// One line of `scores-<condition>.jsonl`: one reply's verdict on its conversation's turn-1
/// instruction, keyed `<conversation key>/t<turn>` and with the fields of `eval`'s score lines
/// (the official evaluator's names), so `scripts/official-ifeval/check-multiturn.sh` can compare
/// every verdict with the official verifiers'. A conversation has exactly one instruction.
#[derive(serde::Serialize)]
struct TurnScoreLine<'a> {
    key: String,
    instruction_id_list: [&'a str; 1],
    follow_instruction_list_strict: [bool; 1],
    follow_instruction_list_loose: [bool; 1],
}

/// Every reply's verdict of one condition, conversations in the set's order (rewritten on every
/// scoring, like the report).
fn write_turn_scores(path: &Path, set: &[Conversation], verdicts: &[Vec<TurnVerdict>]) -> anyhow::Result<()> {
    let mut out = String::new();
    for (conversation, turns) in set.iter().zip(verdicts) {
        for (t, v) in turns.iter().enumerate() {
            let line = TurnScoreLine {
                key: format!("{}/t{}", conversation.key, t + 1),
                instruction_id_list: [conversation.instruction.instruction_id_list[0].as_str()],
                follow_instruction_list_strict: [v.strict],
                follow_instruction_list_loose: [v.loose],
            };
            out.push_str(&serde_json::to_string(&line)?);
            out.push('\n');
        }
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Finished conversations of one condition's file, by key; a torn last line is dropped.
fn read_done(path: &Path) -> anyhow::Result<BTreeMap<Key, ConversationLine>> {
    let mut done = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(done);
    };
    let mut valid = String::new();
    for line in text.lines() {
        if let Ok(c) = serde_json::from_str::<ConversationLine>(line) {
            valid.push_str(line);
            valid.push('\n');
            done.insert(c.key.clone(), c);
        }
    }
    if valid.len() != text.len() {
        std::fs::write(path, valid).with_context(|| format!("rewriting {}", path.display()))?;
    }
    Ok(done)
}

/// The user turns a condition sends: turn 1's highlights as steering spans, as `**bold**`
/// (emphasis) or dropped (baseline).
fn user_turns(conversation: &Conversation, condition: &Condition) -> Vec<Highlighted> {
    conversation
        .turns
        .iter()
        .map(|t| match condition {
            Condition::Baseline => markup::plain(&t.text),
            Condition::Emphasis => markup::plain(&to_markup(&t.text, &t.spans)),
            Condition::Spotlight { .. } | Condition::Static { .. } => t.clone(),
        })
        .collect()
}

pub fn multiturn(args: &MultiturnArgs) -> anyhow::Result<()> {
    let conditions = parse_conditions(&args.conditions).map_err(anyhow::Error::msg)?;
    if let Some(c) = conditions.iter().find(|c| {
        matches!(c, Condition::Spotlight { levers, .. } if levers.highlight != spotlight::eval::annotate::Scope::Sentence)
    }) {
        bail!("--conditions `{c}`: multiturn steers turn 1's sentence highlights; `highlight=clause` is for `eval` only");
    }
    if args.max_tokens == 0 || args.conversations == 0 {
        bail!("--max-tokens and --conversations must be at least 1");
    }
    super::check_repeat_penalty(args.repeat_penalty)?;
    let decoding = Decoding::new(args.max_tokens, 0.0, args.repeat_penalty, args.seed);
    let items = data::load(&args.data)?;
    let set = build_set(&items, args.conversations, args.turns, args.seed)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut model = None;
    let mut per_condition = Vec::new();
    for condition in &conditions {
        let path = args.out.join(format!("multiturn-{}.jsonl", condition.slug()));
        let mut done = read_done(&path)?;
        let todo: Vec<&Conversation> = set.iter().filter(|c| !done.contains_key(&c.key)).collect();
        // rescoring reads any file; adding conversations decoded otherwise would mix two runs
        let other = done
            .values()
            .find_map(|c| c.decoding.filter(|d| *d != decoding).map(|d| (&c.key, d)));
        if let (false, Some((key, theirs))) = (todo.is_empty(), other) {
            bail!(
                "{}: conversation {key} was decoded with {theirs}, this run asks for {decoding} (use another --out)",
                path.display()
            );
        }
        if args.score_only && !todo.is_empty() {
            bail!(
                "--score-only: {} has {} of {} conversations (first missing key: {})",
                path.display(),
                set.len() - todo.len(),
                set.len(),
                todo[0].key
            );
        }
        if !todo.is_empty() {
            if model.is_none() {
                model = Some(super::load_model(&args.model, !args.quiet)?);
            }
            let model = model.as_ref().expect("loaded above");
            let steer = condition.steer_config();
            if let Some(config) = &steer {
                config
                    .layers
                    .validate(model.n_layer())
                    .map_err(|e| anyhow::anyhow!("--conditions `{condition}`: {e}"))?;
            }
            let params = ContextParams {
                n_ctx: args.ctx_size,
                n_batch: 512,
                n_ubatch: 512,
                n_threads: super::threads(args.model.threads),
                n_seq_max: 1,
                flash_attn: FlashAttn::Off,
            };
            let session = Session::new(model, params, steer)?;
            let template = ChatTemplate::from_model(model)?;
            let mut chat = Chat::new(session, Some(template), None);
            let mut options = GenerateOptions::greedy(args.max_tokens);
            options.sampling.repeat_penalty = args.repeat_penalty;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            for (i, conversation) in todo.iter().enumerate() {
                chat.clear();
                let mut turns = Vec::new();
                for (t, user) in user_turns(conversation, condition).into_iter().enumerate() {
                    let text = user.text.clone();
                    let out = chat
                        .send(user, &options, |_| {})
                        .with_context(|| format!("{condition}, conversation {}, turn {}", conversation.key, t + 1))?;
                    turns.push(TurnLine {
                        user: text,
                        reply: out.text,
                    });
                }
                let line = ConversationLine {
                    key: conversation.key.clone(),
                    instruction_id: conversation.instruction.instruction_id_list[0].clone(),
                    decoding: Some(decoding),
                    turns,
                };
                writeln!(file, "{}", serde_json::to_string(&line)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                done.insert(line.key.clone(), line);
                if !args.quiet {
                    eprintln!("{condition}: conversation {}/{} done", i + 1, todo.len());
                }
            }
        }
        let mut conversations = Vec::new();
        for c in &set {
            let line = &done[&c.key];
            if line.turns.len() != args.turns {
                bail!(
                    "{}: conversation {} has {} turns, --turns is {} (use another --out)",
                    path.display(),
                    c.key,
                    line.turns.len(),
                    args.turns
                );
            }
            let verdicts = line
                .turns
                .iter()
                .map(|t| check_reply(c, &t.reply))
                .collect::<Result<Vec<_>, _>>()?;
            conversations.push(verdicts);
        }
        write_turn_scores(
            &args.out.join(format!("scores-{}.jsonl", condition.slug())),
            &set,
            &conversations,
        )?;
        per_condition.push(ConditionTurns {
            name: condition.to_string(),
            conversations,
        });
    }
    let report = build(&per_condition, args.seed)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let markdown = render_markdown(&report, &command);
    std::fs::write(args.out.join("multiturn.md"), &markdown)?;
    std::fs::write(args.out.join("multiturn.json"), serde_json::to_string_pretty(&report)?)?;
    println!("{markdown}");
    Ok(())
}
