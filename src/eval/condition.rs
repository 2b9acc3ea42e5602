//! Evaluation conditions: `baseline`, `emphasis`, `spotlight:τ[:head|layer]`, `static:b`.

use crate::spotlight::{Action, Alpha, Granularity};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The plain prompt, no steering.
    Baseline,
    /// The highlighted text kept in the prompt as markdown bold (how users emphasize today).
    Emphasis,
    /// SpotLight steering toward share τ.
    Spotlight { alpha: Alpha, granularity: Granularity },
    /// A constant logit bias b on span keys in all layers (the fixed-bias family).
    Static { bias: f32 },
}

impl Condition {
    /// The steering action, if the condition steers.
    pub fn action(&self) -> Option<Action> {
        match *self {
            Condition::Spotlight { alpha, granularity } => Some(Action::steer(alpha, granularity)),
            Condition::Static { bias } => Some(Action::StaticBias { bias }),
            Condition::Baseline | Condition::Emphasis => None,
        }
    }

    /// File-name-safe identifier, e.g. `spotlight-0.1-layer`.
    pub fn slug(&self) -> String {
        self.to_string().replace(':', "-")
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Baseline => write!(f, "baseline"),
            Condition::Emphasis => write!(f, "emphasis"),
            Condition::Spotlight { alpha, granularity } => write!(f, "spotlight:{alpha}:{granularity}"),
            Condition::Static { bias } => write!(f, "static:{bias}"),
        }
    }
}

/// Parse a comma-separated condition list.
pub fn parse_conditions(s: &str) -> Result<Vec<Condition>, String> {
    let mut out: Vec<Condition> = Vec::new();
    for item in s.split(',').map(str::trim) {
        let parts: Vec<&str> = item.split(':').collect();
        let number = |t: &str, what: &str| {
            t.parse::<f32>()
                .map_err(|_| format!("`{item}`: {what} `{t}` is not a number"))
        };
        let c = match parts.as_slice() {
            ["baseline"] => Condition::Baseline,
            ["emphasis"] => Condition::Emphasis,
            ["spotlight", a] | ["spotlight", a, _] => {
                let alpha: Alpha = a.parse().map_err(|e| format!("`{item}`: {e}"))?;
                if alpha.is_off() {
                    // [0, 1) is the rule everywhere; 0 is refused only here, where it would be
                    // a second, differently named baseline
                    return Err(format!(
                        "`{item}`: τ = 0 does not steer; use `baseline` for the unsteered prompt"
                    ));
                }
                let granularity = match parts.get(2) {
                    Some(g) => g.parse().map_err(|e| format!("`{item}`: {e}"))?,
                    None => Granularity::Layer,
                };
                Condition::Spotlight { alpha, granularity }
            }
            ["static", b] => {
                let bias = number(b, "bias")?;
                if !bias.is_finite() {
                    return Err(format!("`{item}`: the bias must be a finite number"));
                }
                Condition::Static { bias }
            }
            _ => {
                return Err(format!(
                    "unknown condition `{item}` (use baseline, emphasis, spotlight:τ[:head|layer], static:b)"
                ))
            }
        };
        if out.contains(&c) {
            return Err(format!("condition `{item}` is listed twice"));
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_condition_grammar() {
        let c = parse_conditions("baseline,emphasis,spotlight:0.1,spotlight:0.2:head,static:2").unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(
            c[2],
            Condition::Spotlight {
                alpha: Alpha::new(0.1).unwrap(),
                granularity: Granularity::Layer
            }
        );
        assert_eq!(c[3].to_string(), "spotlight:0.2:head");
        assert_eq!(c[3].slug(), "spotlight-0.2-head");
        assert_eq!(c[4].action(), Some(Action::StaticBias { bias: 2.0 }));
        // the range check and message of every τ (run, chat, eval): spotlight::config::Alpha
        let err = parse_conditions("spotlight:1.5").unwrap_err();
        assert!(err.contains("`spotlight:1.5`") && err.contains("[0, 1)"), "{err}");
        assert!(parse_conditions("spotlight:x").unwrap_err().contains("number"));
        assert!(parse_conditions("spotlight:0").unwrap_err().contains("baseline"));
        assert!(parse_conditions("static:inf").unwrap_err().contains("finite"));
        assert!(parse_conditions("spotlight:0.1:token").unwrap_err().contains("token"));
        assert!(parse_conditions("baseline,baseline").unwrap_err().contains("twice"));
        assert!(parse_conditions("magic").unwrap_err().contains("unknown condition"));
    }
}
