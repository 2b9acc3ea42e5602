//! Evaluation conditions: `baseline`, `emphasis`, `spotlight:τ[:head|layer][:key=value…]`,
//! `static:b`.
//!
//! The keys of a SpotLight condition are the levers against its side effects: `prefill=τ` and
//! `decode=τ` set τ for the prompt's rows and for the generated tokens' rows (0 observes only),
//! `layers=1-28` steers only those layers (`+` joins ranges: `0-3+10`, since `,` separates
//! conditions), `highlight=clause` steers toward the annotator's clause-scope highlights instead
//! of whole sentences (`crate::eval::annotate::Scope`).

use crate::eval::annotate::Scope;
use crate::spotlight::{Action, Alpha, Granularity, LayerSelection, SteerConfig};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The plain prompt, no steering.
    Baseline,
    /// The highlighted text kept in the prompt as markdown bold (how users emphasize today).
    Emphasis,
    /// SpotLight steering toward share τ.
    Spotlight {
        alpha: Alpha,
        granularity: Granularity,
        levers: Levers,
    },
    /// A constant logit bias b on span keys in all layers (the fixed-bias family).
    Static { bias: f32 },
}

/// How a SpotLight condition departs from "τ in every row of every layer".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Levers {
    /// τ for the prompt's rows (None: the condition's τ).
    pub prefill: Option<Alpha>,
    /// τ for the generated tokens' rows (None: the condition's τ).
    pub decode: Option<Alpha>,
    /// The steered layers as written in the condition (`1-28`), and parsed; None: all.
    pub layers: Option<(String, LayerSelection)>,
    /// Which highlights to steer toward: the data's (sentence scope for the annotator), or the
    /// annotator's clause scope.
    pub highlight: Scope,
}

impl Condition {
    /// The steering action, if the condition steers (the prompt rows' action for a condition
    /// with `prefill=`/`decode=`; [`Condition::steer_config`] has both).
    pub fn action(&self) -> Option<Action> {
        self.steer_config().map(|c| c.action)
    }

    /// The hook's configuration, if the condition steers (without tracing).
    pub fn steer_config(&self) -> Option<SteerConfig> {
        match self {
            Condition::Spotlight {
                alpha,
                granularity,
                levers,
            } => {
                let layers = levers.layers.as_ref().map_or(LayerSelection::All, |(_, l)| l.clone());
                Some(SteerConfig::spotlight_phased(
                    levers.prefill.unwrap_or(*alpha),
                    levers.decode.unwrap_or(*alpha),
                    *granularity,
                    layers,
                ))
            }
            Condition::Static { bias } => Some(SteerConfig {
                action: Action::StaticBias { bias: *bias },
                decode: None,
                layers: LayerSelection::All,
                trace: false,
            }),
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
            Condition::Spotlight {
                alpha,
                granularity,
                levers,
            } => {
                write!(f, "spotlight:{alpha}:{granularity}")?;
                if let Some(t) = levers.prefill {
                    write!(f, ":prefill={t}")?;
                }
                if let Some(t) = levers.decode {
                    write!(f, ":decode={t}")?;
                }
                if let Some((text, _)) = &levers.layers {
                    write!(f, ":layers={text}")?;
                }
                if levers.highlight != Scope::Sentence {
                    write!(f, ":highlight={}", levers.highlight)?;
                }
                Ok(())
            }
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
            ["spotlight", a, rest @ ..] => {
                let alpha: Alpha = a.parse().map_err(|e| format!("`{item}`: {e}"))?;
                let mut granularity = None;
                let mut levers = Levers::default();
                let mut highlight_given = false;
                for part in rest {
                    let tau = |t: &str| t.parse::<Alpha>().map_err(|e| format!("`{item}`: {e}"));
                    match part.split_once('=') {
                        None if granularity.is_none() => {
                            granularity = Some(part.parse().map_err(|e| format!("`{item}`: {e}"))?)
                        }
                        None => return Err(format!("`{item}`: `{part}` is a second granularity")),
                        Some(("prefill", t)) if levers.prefill.is_none() => levers.prefill = Some(tau(t)?),
                        Some(("decode", t)) if levers.decode.is_none() => levers.decode = Some(tau(t)?),
                        Some(("layers", t)) if levers.layers.is_none() => {
                            let layers = t.replace('+', ",").parse().map_err(|e| format!("`{item}`: {e}"))?;
                            levers.layers = Some((t.to_string(), layers));
                        }
                        Some(("highlight", t)) if !highlight_given => {
                            levers.highlight = t.parse().map_err(|e| format!("`{item}`: {e}"))?;
                            highlight_given = true;
                        }
                        Some((key @ ("prefill" | "decode" | "layers" | "highlight"), _)) => {
                            return Err(format!("`{item}`: `{key}=` is given twice"))
                        }
                        Some((key, _)) => {
                            return Err(format!(
                                "`{item}`: unknown setting `{key}=` (use prefill=τ, decode=τ, layers=A-B, highlight=clause)"
                            ))
                        }
                    }
                }
                // a phase τ equal to the condition's says nothing: dropped, so that the same
                // steering has one name
                levers.prefill = levers.prefill.filter(|t| *t != alpha);
                levers.decode = levers.decode.filter(|t| *t != alpha);
                let off = |t: Option<Alpha>| t.unwrap_or(alpha).is_off();
                if off(levers.prefill) && off(levers.decode) {
                    // [0, 1) is the rule everywhere; 0 is refused only here, where it would be
                    // a second, differently named baseline
                    return Err(format!(
                        "`{item}`: τ = 0 does not steer; use `baseline` for the unsteered prompt"
                    ));
                }
                Condition::Spotlight {
                    alpha,
                    granularity: granularity.unwrap_or(Granularity::Layer),
                    levers,
                }
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
                    "unknown condition `{item}` (use baseline, emphasis, spotlight:τ[:head|layer][:prefill=τ][:decode=τ][:layers=A-B][:highlight=clause], static:b)"
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

    fn c_default_steer() -> Option<SteerConfig> {
        parse_conditions("spotlight:0.2").unwrap()[0].steer_config()
    }

    #[test]
    fn parses_the_condition_grammar() {
        let c = parse_conditions("baseline,emphasis,spotlight:0.1,spotlight:0.2:head,static:2").unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(
            c[2],
            Condition::Spotlight {
                alpha: Alpha::new(0.1).unwrap(),
                granularity: Granularity::Layer,
                levers: Levers::default(),
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

    #[test]
    fn parses_the_levers_and_names_them_back() {
        let c = parse_conditions(
            "spotlight:0.2:layer:decode=0,spotlight:0.2:prefill=0:layers=1-28,spotlight:0.2:head:layers=0-3+10",
        )
        .unwrap();
        assert_eq!(c[0].to_string(), "spotlight:0.2:layer:decode=0");
        assert_eq!(c[0].slug(), "spotlight-0.2-layer-decode=0");
        let prompt_only = c[0].steer_config().unwrap();
        assert!(prompt_only.is_phased());
        assert_eq!(prompt_only.decode, Some(Action::Observe));
        assert_eq!(c[1].to_string(), "spotlight:0.2:layer:prefill=0:layers=1-28");
        let generated_only = c[1].steer_config().unwrap();
        assert_eq!(generated_only.action, Action::Observe);
        assert!(generated_only.layers.contains(28) && !generated_only.layers.contains(0));
        let head = c[2].steer_config().unwrap();
        assert!(head.layers.contains(10) && head.layers.contains(3) && !head.layers.contains(4));
        let clause = &parse_conditions("spotlight:0.2:highlight=clause").unwrap()[0];
        assert_eq!(clause.to_string(), "spotlight:0.2:layer:highlight=clause");
        assert_eq!(
            clause.steer_config(),
            c_default_steer(),
            "the scope changes the spans, not the hook"
        );
        assert_eq!(
            parse_conditions("spotlight:0.2:highlight=sentence").unwrap()[0].to_string(),
            "spotlight:0.2:layer"
        );
        // the same steering has one name; both phases off is the baseline
        assert_eq!(
            parse_conditions("spotlight:0.2:decode=0.2").unwrap()[0],
            parse_conditions("spotlight:0.2").unwrap()[0]
        );
        assert!(parse_conditions("spotlight:0.2:prefill=0:decode=0")
            .unwrap_err()
            .contains("baseline"));
        assert!(
            parse_conditions("spotlight:0:decode=0.1").is_ok(),
            "generated rows only, spelled from τ = 0"
        );
        for (bad, says) in [
            ("spotlight:0.2:decode=1.2", "[0, 1)"),
            ("spotlight:0.2:decode=0.1:decode=0", "twice"),
            ("spotlight:0.2:head:layer", "second granularity"),
            ("spotlight:0.2:speed=2", "unknown setting `speed=`"),
            ("spotlight:0.2:layers=5-2", "backwards"),
            ("spotlight:0.2:highlight=word", "sentence or clause"),
            ("spotlight:0.2:highlight=clause:highlight=clause", "twice"),
        ] {
            let err = parse_conditions(bad).unwrap_err();
            assert!(err.contains(says) && err.contains(bad), "{bad}: {err}");
        }
    }
}
