//! `--show-spans`: the prompt as the model sees it with highlighted tokens marked.

use spotlight::spotlight::prompt::PreparedPrompt;
use std::io::IsTerminal;

/// Colour when stderr is a terminal and NO_COLOR is unset; brackets otherwise.
pub fn render(prompt: &PreparedPrompt) -> String {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let (open, close) = if color { ("\x1b[1;33m", "\x1b[0m") } else { ("[[", "]]") };
    let highlighted: std::collections::BTreeSet<usize> = prompt.span_token_positions.iter().copied().collect();
    // Byte-level tokenizers can split a character across tokens: assemble bytes, decode once.
    let mut out: Vec<u8> = Vec::new();
    let mut in_span = false;
    for (i, range) in prompt.token_ranges.iter().enumerate() {
        let on = highlighted.contains(&i);
        if on && !in_span {
            out.extend_from_slice(open.as_bytes());
        } else if !on && in_span {
            out.extend_from_slice(close.as_bytes());
        }
        in_span = on;
        out.extend_from_slice(&prompt.text.as_bytes()[range.clone()]);
    }
    if in_span {
        out.extend_from_slice(close.as_bytes());
    }
    String::from_utf8_lossy(&out).into_owned()
}
