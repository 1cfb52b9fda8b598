//! The adaptive part of WALF for the real-world target: a per-group running KL (EMA mean and a
//! Welford-style running variance) and the weight λ derived from it, exactly as the paper's
//! `KLTracker` and `adjust_lambda`.

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::data::Group;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupKl {
    pub mean: f64,
    pub variance: f64,
    /// Professions seen so far.
    pub count: f64,
}

/// Running KL statistics per group. The first batch of a group initialises its mean; later
/// batches move it by `1 − beta` and update the variance from the old and new means.
///
/// The paper's code means `(n_old·var + (x − new_mean)(x − old_mean)) / n_new`, but its
/// `n_old` is the same tensor as the count it has just increased in place, so what it computes is
/// `var + (x − new_mean)(x − old_mean) / n_new`. That is reproduced here; the two differ from a
/// group's third batch on.
#[derive(Debug, Clone, Serialize)]
pub struct KlTracker {
    pub beta: f64,
    pub groups: BTreeMap<Group, GroupKl>,
}

impl KlTracker {
    pub fn new(beta: f64) -> Self {
        Self {
            beta,
            groups: BTreeMap::new(),
        }
    }

    /// Feeds a batch's KL (a value: no gradient flows through the tracker) and returns the
    /// group's statistics after the update.
    pub fn update(&mut self, group: Group, kl: f64, batch_size: usize) -> GroupKl {
        let n = batch_size as f64;
        let beta = self.beta;
        let entry = self
            .groups
            .entry(group)
            .and_modify(|g| {
                let (old_mean, old_var) = (g.mean, g.variance);
                g.count += n;
                g.mean = beta * old_mean + (1.0 - beta) * kl;
                g.variance = (g.count * old_var + (kl - g.mean) * (kl - old_mean)) / g.count;
            })
            .or_insert(GroupKl {
                mean: kl,
                variance: 0.0,
                count: n,
            });
        *entry
    }

    pub fn get(&self, group: Group) -> Option<GroupKl> {
        self.groups.get(&group).copied()
    }

    /// What the KL's gradient is multiplied by in a batch of `group` whose KL is `kl` (a value:
    /// detached): λ / (mean + α) from the statistics [`update`](Self::update) would leave, with
    /// the same arithmetic, computed on the KL's device without changing the tracker. The step
    /// then needs no read-back before its backward pass: the KL comes back once, with the step's
    /// other losses, and feeds [`update`](Self::update) there.
    pub fn scale_on_device(&self, group: Group, kl: Tensor<1>, batch_size: usize) -> Tensor<1> {
        let (c, lo, hi) = lambda_constants(group);
        let (mean, variance) = match self.get(group) {
            None => (kl.clone(), kl.zeros_like()),
            Some(old) => {
                let count = old.count + batch_size as f64;
                let mean = kl
                    .clone()
                    .mul_scalar(1.0 - self.beta)
                    .add_scalar(self.beta * old.mean);
                let variance = (kl.clone() - mean.clone())
                    .mul(kl.sub_scalar(old.mean))
                    .add_scalar(count * old.variance)
                    .div_scalar(count);
                (mean, variance)
            }
        };
        let lambda = mean
            .clone()
            .mul_scalar(c)
            .div(variance.add_scalar(1.0))
            .clamp(lo, hi);
        lambda.div(mean.add_scalar(alpha(group)))
    }
}

/// α of the normalised loss `KL / (mean + α)`.
pub fn alpha(group: Group) -> f64 {
    match group {
        Group::MaleDominated => 1e-6,
        Group::FemaleDominated | Group::Balanced => 1e-5,
    }
}

/// λ = clamp(c · mean / (1 + variance), lo, hi), with the paper's c and bounds per group.
pub fn adjust_lambda(group: Group, stats: GroupKl) -> f64 {
    let (c, lo, hi) = lambda_constants(group);
    (c * stats.mean / (1.0 + stats.variance)).clamp(lo, hi)
}

/// The paper's c, lo and hi of λ for `group`.
fn lambda_constants(group: Group) -> (f64, f64, f64) {
    match group {
        Group::MaleDominated => (0.95, 0.8, 1.5),
        Group::FemaleDominated | Group::Balanced => (1.2, 1.0, 1.5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_batch_initialises_then_ema_and_variance_follow() {
        let mut t = KlTracker::new(0.8);
        let first = t.update(Group::Balanced, 0.5, 8);
        assert_eq!(
            first,
            GroupKl {
                mean: 0.5,
                variance: 0.0,
                count: 8.0
            }
        );
        let second = t.update(Group::Balanced, 1.0, 4);
        let mean = 0.8 * 0.5 + 0.2 * 1.0;
        assert!((second.mean - mean).abs() < 1e-15);
        let variance = (1.0 - mean) * (1.0 - 0.5) / 12.0;
        assert!((second.variance - variance).abs() < 1e-15);
        assert_eq!(second.count, 12.0);
        // the paper's aliased count: the old variance is carried whole
        let third = t.update(Group::Balanced, 0.0, 4);
        let mean3 = 0.8 * mean;
        let expected = variance + (0.0 - mean3) * (0.0 - mean) / 16.0;
        assert!((third.variance - expected).abs() < 1e-15);
        // groups are independent
        assert_eq!(t.update(Group::MaleDominated, 2.0, 8).mean, 2.0);
    }

    #[test]
    fn the_scale_computed_on_the_device_is_the_one_the_update_gives() {
        // λ / (mean + α) from the KL still on the device must be what the tracker gives once
        // the KL is read back: first batches, later ones (the variance's aliased count), λ
        // clamped low and high, and every group's constants.
        let device = burn::tensor::Device::flex();
        let mut tracker = KlTracker::new(0.6);
        let batches = [
            (Group::MaleDominated, 0.31, 8),
            (Group::MaleDominated, 2.40, 8),
            (Group::FemaleDominated, 0.052, 5),
            (Group::MaleDominated, 0.9, 3),
            (Group::FemaleDominated, 3.1, 8),
            (Group::Balanced, 1.05, 8),
            (Group::FemaleDominated, 0.4, 8),
            (Group::Balanced, 0.0008, 2),
            (Group::MaleDominated, 5.0, 8),
        ];
        let mut lambdas = Vec::new();
        for (group, kl, n) in batches {
            let before = tracker.groups.clone();
            let kl_tensor = Tensor::<1>::from_floats([kl as f32], &device);
            let on_device = tracker.scale_on_device(group, kl_tensor, n);
            let on_device = on_device.into_data().try_to_vec::<f32>().unwrap()[0] as f64;
            assert_eq!(tracker.groups, before, "the tracker itself is not moved");
            let stats = tracker.update(group, kl as f32 as f64, n);
            let lambda = adjust_lambda(group, stats);
            let scale = lambda / (stats.mean + alpha(group));
            assert!(
                (on_device - scale).abs() <= 1e-6 * scale,
                "{group:?} KL {kl}: {on_device} on the device, {scale} after the update"
            );
            lambdas.push(lambda);
        }
        // the cases above reach both bounds and the inside of λ's range
        let (lo, hi) = (0.8, 1.5);
        assert!(
            lambdas.contains(&lo) && lambdas.contains(&hi),
            "{lambdas:?}"
        );
        assert!(lambdas.iter().any(|&l| l > 1.0 && l < hi), "{lambdas:?}");
    }

    #[test]
    fn lambda_is_clamped_per_group() {
        let stats = |mean, variance| GroupKl {
            mean,
            variance,
            count: 1.0,
        };
        assert_eq!(adjust_lambda(Group::MaleDominated, stats(0.1, 0.0)), 0.8);
        assert_eq!(adjust_lambda(Group::MaleDominated, stats(10.0, 0.0)), 1.5);
        assert!((adjust_lambda(Group::MaleDominated, stats(1.2, 0.2)) - 0.95).abs() < 1e-12);
        assert_eq!(adjust_lambda(Group::Balanced, stats(0.1, 0.0)), 1.0);
        assert!((adjust_lambda(Group::FemaleDominated, stats(1.1, 0.1)) - 1.2).abs() < 1e-12);
    }
}
