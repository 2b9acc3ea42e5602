//! A fixed, seeded subset of the prompts (`eval --subset N --subset-seed S`): when a model is too
//! slow for all 541 prompts under every condition, each condition runs on the same N prompts,
//! and anyone can name them again from N and S alone.

use super::rng::SplitMix64;

/// Indices of `n` of `len` items, chosen by a partial Fisher–Yates shuffle driven by
/// splitmix64(`seed`), returned in ascending order (so the subset keeps the data set's order).
/// `n >= len` selects everything.
pub fn subset_indices(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let n = n.min(len);
    let mut rng = SplitMix64(seed);
    for i in 0..n {
        let j = i + rng.below(len - i);
        order.swap(i, j);
    }
    let mut chosen = order[..n].to_vec();
    chosen.sort_unstable();
    chosen
}

/// Keep only the items at `subset_indices(items.len(), n, seed)`.
pub fn seeded_subset<T>(items: Vec<T>, n: usize, seed: u64) -> Vec<T> {
    let keep = subset_indices(items.len(), n, seed);
    let mut keep = keep.into_iter().peekable();
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            if keep.peek() == Some(&i) {
                keep.next();
                Some(item)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_is_sorted_distinct_deterministic_and_seed_dependent() {
        let a = subset_indices(541, 300, 17);
        assert_eq!(a.len(), 300);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "ascending and distinct");
        assert!(*a.last().unwrap() < 541);
        assert_eq!(a, subset_indices(541, 300, 17));
        assert_ne!(a, subset_indices(541, 300, 18));
        // not simply the first 300: a shuffle reaches the end of the data set
        assert!(a.iter().any(|&i| i >= 300));
    }

    #[test]
    fn subset_larger_than_data_takes_everything() {
        assert_eq!(subset_indices(5, 9, 1), vec![0, 1, 2, 3, 4]);
        assert_eq!(seeded_subset(vec!['a', 'b', 'c'], 3, 4), vec!['a', 'b', 'c']);
    }

    #[test]
    fn seeded_subset_keeps_the_chosen_items_in_order() {
        let items: Vec<usize> = (100..200).collect();
        let picked = seeded_subset(items, 10, 3);
        let idx = subset_indices(100, 10, 3);
        assert_eq!(picked, idx.iter().map(|i| i + 100).collect::<Vec<_>>());
    }
}
