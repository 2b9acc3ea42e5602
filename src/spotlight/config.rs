//! The steering configuration: what the hook does in which layers, validated once.
//!
//! Every entry point (run, chat and its `/alpha`, eval conditions, bench, serve requests) builds
//! its τ through [`Alpha::new`], so the range check and its message exist in one place.

use super::layers::LayerSelection;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Default τ, chosen from the IFEval run on the default model (docs/results/ifeval-smollm2):
/// 0.2 per layer followed the most instructions, greedy and with a repetition penalty, and
/// shortened replies less than per-head steering.
pub const DEFAULT_ALPHA: Alpha = Alpha(0.2);
/// Default granularity (see [`DEFAULT_ALPHA`]).
pub const DEFAULT_GRANULARITY: Granularity = Granularity::Layer;

/// The target span share τ, in [0, 1); 0 means "do not steer".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Alpha(f32);

/// Why a steering setting was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("alpha (τ) must be in [0, 1), not {0}; 0 turns steering off")]
    AlphaOutOfRange(f32),
    #[error("alpha (τ) must be a number in [0, 1), not `{0}`")]
    AlphaNotANumber(String),
    #[error("granularity must be `head` or `layer`, not `{0}`")]
    Granularity(String),
    #[error("a static bias must be a finite number, not {0}")]
    Bias(f32),
}

impl Alpha {
    pub const OFF: Alpha = Alpha(0.0);

    /// τ ≥ 1 asks for every head to look only at the span, which destroys the output (the
    /// divisor 1 − τ vanishes); a negative or NaN τ means nothing.
    pub fn new(value: f32) -> Result<Self, ConfigError> {
        if (0.0..1.0).contains(&value) {
            Ok(Alpha(value))
        } else {
            Err(ConfigError::AlphaOutOfRange(value))
        }
    }

    pub fn get(self) -> f32 {
        self.0
    }

    pub fn is_off(self) -> bool {
        self.0 == 0.0
    }
}

impl Default for Alpha {
    fn default() -> Self {
        DEFAULT_ALPHA
    }
}

impl FromStr for Alpha {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let value: f32 = s
            .trim()
            .parse()
            .map_err(|_| ConfigError::AlphaNotANumber(s.to_string()))?;
        Alpha::new(value)
    }
}

impl fmt::Display for Alpha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Alpha {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = f32::deserialize(d)?;
        Alpha::new(value).map_err(serde::de::Error::custom)
    }
}

/// Per head, or one bias shared by all heads of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Head,
    Layer,
}

impl Granularity {
    /// Every granularity, for option parsers that list the choices (`--granularity`).
    pub const ALL: [Granularity; 2] = [Granularity::Head, Granularity::Layer];

    /// The name used on the command line, in traces and in eval conditions.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Head => "head",
            Granularity::Layer => "layer",
        }
    }
}

impl FromStr for Granularity {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Granularity::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| ConfigError::Granularity(s.to_string()))
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the hook does in each selected layer.
///
/// τ is a plain `f32` here so that the graph code and hand-written configurations (tests, the
/// golden runs) can name it directly; [`Action::steer`] builds the variant from a validated
/// [`Alpha`], and [`SteerConfig::check`] holds a hand-written one to the same rule before a
/// session installs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// SpotLight: raise the span share to at least `alpha`.
    Steer { alpha: f32, granularity: Granularity },
    /// A constant logit bias `bias` on span keys (the fixed-bias baseline): span × e^b/Z, rest × 1/Z.
    StaticBias { bias: f32 },
    /// Change nothing, only measure the span share (for traces of unsteered runs).
    Observe,
}

impl Action {
    /// SpotLight with τ and granularity, or [`Action::Observe`] for τ = 0.
    pub fn steer(alpha: Alpha, granularity: Granularity) -> Self {
        if alpha.is_off() {
            Action::Observe
        } else {
            Action::Steer {
                alpha: alpha.get(),
                granularity,
            }
        }
    }

    /// The logit bias b that raises a share `p` to the target, where this action raises it
    /// (None where it leaves the row alone): e^b = τ(1−p)/(p(1−τ)) for SpotLight, the constant
    /// for the static bias. The same rule as the graph in `controller.rs`, for traces.
    pub fn bias_for_share(&self, p: f32) -> Option<f32> {
        match *self {
            Action::Steer { alpha: tau, .. } if p < tau => {
                Some(((tau * (1.0 - p)) / (p.max(MIN_SHARE) * (1.0 - tau))).ln())
            }
            Action::StaticBias { bias } => Some(bias),
            _ => None,
        }
    }
}

/// Which rows a ubatch computes: the prompt's (prefill) or generated tokens' (decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prefill,
    Decode,
}

/// Floor for p in divisions: keeps τ/p and e^b finite when p underflows.
pub(crate) const MIN_SHARE: f32 = 1e-30;

/// Configuration of the steering hook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SteerConfig {
    /// What the hook does; for the prompt's rows only when `decode` is set.
    #[serde(flatten)]
    pub action: Action,
    /// A different action for the rows of generated tokens (None: `action` for every row). The
    /// session swaps the hook between prompt processing and generation, so a row is steered by
    /// the phase it is computed in (see [`SteerConfig::for_phase`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode: Option<Action>,
    #[serde(serialize_with = "serialize_display")]
    pub layers: LayerSelection,
    /// Measure the span share before and after the correction and record it per ubatch.
    #[serde(skip)]
    pub trace: bool,
}

fn serialize_display<S: serde::Serializer>(v: &LayerSelection, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl SteerConfig {
    /// SpotLight steering of the given layers, without tracing.
    pub fn spotlight(alpha: Alpha, granularity: Granularity, layers: LayerSelection) -> Self {
        SteerConfig {
            action: Action::steer(alpha, granularity),
            decode: None,
            layers,
            trace: false,
        }
    }

    /// SpotLight with one τ for the prompt's rows and another for the generated tokens' rows
    /// (either may be 0: only observe in that phase).
    pub fn spotlight_phased(prefill: Alpha, decode: Alpha, granularity: Granularity, layers: LayerSelection) -> Self {
        let decode = Action::steer(decode, granularity);
        let mut config = SteerConfig::spotlight(prefill, granularity, layers);
        if decode != config.action {
            config.decode = Some(decode);
        }
        config
    }

    /// Whether prompt rows and generated rows are steered differently.
    pub fn is_phased(&self) -> bool {
        self.decode.as_ref().is_some_and(|d| *d != self.action)
    }

    /// The configuration the hook uses while computing one phase: the phase's action, with no
    /// `decode` left (traces of that phase name the action that ran).
    pub fn for_phase(&self, phase: Phase) -> SteerConfig {
        let action = match (phase, &self.decode) {
            (Phase::Decode, Some(decode)) => decode.clone(),
            _ => self.action.clone(),
        };
        SteerConfig {
            action,
            decode: None,
            layers: self.layers.clone(),
            trace: self.trace,
        }
    }

    /// The same rules as the parsers, for a configuration written as a struct literal: τ in
    /// [0, 1) (see [`Alpha::new`]) and a finite static bias (an infinite one turns the
    /// renormalisation into ∞/∞).
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(decode) = &self.decode {
            Self::check_action(decode)?;
        }
        Self::check_action(&self.action)
    }

    fn check_action(action: &Action) -> Result<(), ConfigError> {
        match *action {
            Action::Steer { alpha, .. } => Alpha::new(alpha).map(drop),
            Action::StaticBias { bias } if !bias.is_finite() => Err(ConfigError::Bias(bias)),
            Action::StaticBias { .. } | Action::Observe => Ok(()),
        }
    }

    /// τ of SpotLight steering (0 for the static bias and observation).
    pub fn alpha(&self) -> f32 {
        match self.action {
            Action::Steer { alpha, .. } => alpha,
            _ => 0.0,
        }
    }

    /// Granularity of SpotLight steering (None for the static bias and observation).
    pub fn granularity(&self) -> Option<Granularity> {
        match self.action {
            Action::Steer { granularity, .. } => Some(granularity),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_accepts_exactly_zero_to_below_one() {
        for ok in [0.0, 0.1, 0.2, 0.999] {
            assert_eq!(Alpha::new(ok).unwrap().get(), ok);
        }
        for bad in [1.0, 1.5, -0.1, f32::NAN, f32::INFINITY] {
            assert!(Alpha::new(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            "1.5".parse::<Alpha>().unwrap_err().to_string(),
            "alpha (τ) must be in [0, 1), not 1.5; 0 turns steering off"
        );
        assert!(matches!("x".parse::<Alpha>(), Err(ConfigError::AlphaNotANumber(_))));
    }

    #[test]
    fn alpha_deserializes_through_the_same_check() {
        assert!(serde_json::from_str::<Alpha>("0.3").is_ok());
        let err = serde_json::from_str::<Alpha>("1.5").unwrap_err().to_string();
        assert!(err.contains("[0, 1)"), "{err}");
    }

    #[test]
    fn granularity_names_round_trip() {
        for g in Granularity::ALL {
            assert_eq!(g.to_string().parse::<Granularity>().unwrap(), g);
            assert_eq!(serde_json::to_value(g).unwrap(), g.name());
        }
        assert_eq!(
            "token".parse::<Granularity>().unwrap_err().to_string(),
            "granularity must be `head` or `layer`, not `token`"
        );
        assert!(
            "Head".parse::<Granularity>().is_err(),
            "names are lowercase, as in traces"
        );
    }

    #[test]
    fn alpha_parses_with_surrounding_space_and_displays_as_given() {
        let a: Alpha = " 0.25 ".parse().unwrap();
        assert_eq!((a.get(), a.to_string()), (0.25, "0.25".to_string()));
        assert!("0".parse::<Alpha>().unwrap().is_off());
        assert_eq!(DEFAULT_ALPHA.to_string().parse::<Alpha>().unwrap(), DEFAULT_ALPHA);
    }

    #[test]
    fn check_holds_hand_written_configs_to_the_parsers_rule() {
        let with = |action| SteerConfig {
            action,
            decode: None,
            layers: LayerSelection::All,
            trace: false,
        };
        let steer = |alpha| {
            with(Action::Steer {
                alpha,
                granularity: Granularity::Layer,
            })
        };
        assert!(steer(0.0).check().is_ok() && steer(0.5).check().is_ok());
        assert_eq!(steer(1.5).check(), Err(ConfigError::AlphaOutOfRange(1.5)));
        assert!(steer(-0.1).check().is_err());
        assert!(with(Action::StaticBias { bias: 2.0 }).check().is_ok());
        assert!(with(Action::StaticBias { bias: f32::INFINITY }).check().is_err());
        assert!(with(Action::Observe).check().is_ok());
    }

    #[test]
    fn phased_config_swaps_the_action_for_generated_rows() {
        let a = |v| Alpha::new(v).unwrap();
        let same = SteerConfig::spotlight_phased(a(0.2), a(0.2), Granularity::Layer, LayerSelection::All);
        assert!(!same.is_phased() && same.decode.is_none());
        assert_eq!(same.for_phase(Phase::Decode), same);
        let prompt_only = SteerConfig::spotlight_phased(a(0.2), Alpha::OFF, Granularity::Layer, LayerSelection::All);
        assert!(prompt_only.is_phased());
        assert_eq!(prompt_only.for_phase(Phase::Decode).action, Action::Observe);
        assert_eq!(prompt_only.for_phase(Phase::Prefill).action, prompt_only.action);
        assert_eq!(prompt_only.for_phase(Phase::Decode).decode, None);
        let v = serde_json::to_value(&prompt_only).unwrap();
        assert_eq!(v["decode"]["action"], "observe");
        assert!(serde_json::to_value(&same).unwrap().get("decode").is_none());
        let mut bad = prompt_only.clone();
        bad.decode = Some(Action::Steer {
            alpha: 1.5,
            granularity: Granularity::Layer,
        });
        assert_eq!(bad.check(), Err(ConfigError::AlphaOutOfRange(1.5)));
    }

    #[test]
    fn zero_alpha_observes() {
        assert_eq!(Action::steer(Alpha::OFF, Granularity::Head), Action::Observe);
    }

    #[test]
    fn bias_matches_the_closed_form_and_is_absent_above_tau() {
        let a = Action::steer(Alpha::new(0.1).unwrap(), Granularity::Head);
        let b = a.bias_for_share(0.05).unwrap();
        assert!((b - ((0.1f32 * 0.95) / (0.05 * 0.9)).ln()).abs() < 1e-6);
        assert_eq!(a.bias_for_share(0.1), None);
        assert_eq!(a.bias_for_share(0.5), None);
    }

    #[test]
    fn config_serializes_its_settings() {
        let c = SteerConfig::spotlight(Alpha::new(0.2).unwrap(), Granularity::Layer, LayerSelection::All);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["action"], "steer");
        assert_eq!(v["granularity"], "layer");
        assert_eq!(v["layers"], "all");
        assert!((v["alpha"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    }
}
