//! `--layers` selection: `all`, ranges `4-20`, lists `0,2,5`, or mixes `0-3,10`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// llama.cpp's LLAMA_MAX_LAYERS: no model it loads has more layers. Layer numbers are capped at
/// parse time because a range is expanded into a set: `0-99999999999` would otherwise try to
/// insert 10¹¹ numbers (found while writing the long property run, examples/property_runs.rs).
pub const MAX_LAYERS: usize = 512;

/// Which attention layers are steered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LayerSelection {
    #[default]
    All,
    Only(BTreeSet<usize>),
}

impl LayerSelection {
    pub fn contains(&self, layer: usize) -> bool {
        match self {
            LayerSelection::All => true,
            LayerSelection::Only(set) => set.contains(&layer),
        }
    }

    /// Check the selection against the model's layer count.
    pub fn validate(&self, n_layer: usize) -> Result<(), String> {
        if let LayerSelection::Only(set) = self {
            if let Some(&bad) = set.iter().find(|&&l| l >= n_layer) {
                return Err(format!(
                    "--layers: layer {bad} does not exist (the model has layers 0-{})",
                    n_layer - 1
                ));
            }
        }
        Ok(())
    }
}

impl FromStr for LayerSelection {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(LayerSelection::All);
        }
        let mut set = BTreeSet::new();
        for part in s.split(',') {
            let part = part.trim();
            let num = |t: &str| {
                let n = t
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("`{t}` in `{part}` is not a layer number"))?;
                if n >= MAX_LAYERS {
                    return Err(format!(
                        "layer {n} in `{part}` does not exist in any model (llama.cpp supports at most {MAX_LAYERS} layers)"
                    ));
                }
                Ok(n)
            };
            if part.is_empty() {
                return Err(format!("empty item in layer list `{s}`"));
            }
            if let Some((a, b)) = part.split_once('-') {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("layer range `{part}` runs backwards"));
                }
                set.extend(a..=b);
            } else {
                set.insert(num(part)?);
            }
        }
        Ok(LayerSelection::Only(set))
    }
}

impl fmt::Display for LayerSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerSelection::All => write!(f, "all"),
            LayerSelection::Only(set) => {
                let items: Vec<String> = set.iter().map(|l| l.to_string()).collect();
                write!(f, "{}", items.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_ranges_and_lists() {
        assert_eq!("all".parse::<LayerSelection>().unwrap(), LayerSelection::All);
        let sel: LayerSelection = "0,2,5-7".parse().unwrap();
        assert_eq!(sel, LayerSelection::Only([0, 2, 5, 6, 7].into_iter().collect()));
        assert!(sel.contains(6) && !sel.contains(3));
        assert_eq!(sel.to_string(), "0,2,5,6,7");
    }

    #[test]
    fn rejects_bad_items() {
        assert!("3-1".parse::<LayerSelection>().unwrap_err().contains("backwards"));
        assert!("a"
            .parse::<LayerSelection>()
            .unwrap_err()
            .contains("not a layer number"));
        assert!("1,,2".parse::<LayerSelection>().unwrap_err().contains("empty item"));
        let sel: LayerSelection = "0,40".parse().unwrap();
        assert!(sel.validate(30).unwrap_err().contains("layer 40"));
    }

    #[test]
    fn huge_layer_numbers_are_errors_not_a_huge_set() {
        // Returns at once instead of expanding 10¹¹ numbers (or overflowing at usize::MAX).
        for s in ["0-99999999999", "512", "3,0-18446744073709551615"] {
            let e = s.parse::<LayerSelection>().unwrap_err();
            assert!(e.contains("at most 512 layers"), "{s}: {e}");
        }
        let sel: LayerSelection = "500-511".parse().unwrap();
        assert_eq!(sel, LayerSelection::Only((500..512).collect()));
    }
}
