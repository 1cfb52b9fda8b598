//! Which batch of a probe goes where: the helpers' queues and the engine worker's own share,
//! as a plain type (the pool's messages and timers are in `pool.rs`), so that its rules are
//! tested natively:
//!
//! - batches go out costliest first, so that the last ones, which may leave a worker idle, are
//!   short;
//! - a helper holds at most [`DEPTH`] batches, and only once it has the probe's weights;
//! - the engine worker takes the next batch nobody has, else the last one a full helper has not
//!   started (it only waits there: computing it here ends the probe sooner);
//! - a helper that fails gives its batches back to the front of the queue and gets none again;
//! - a batch is taken in once, from whoever answers first;
//! - a model's weights go to as many helpers as [`helpers_within`] allows.

use std::collections::VecDeque;

/// Batches a helper holds at once: one it computes, one waiting, so it never idles between
/// them.
pub const DEPTH: usize = 2;

/// Weights files this small go to every helper whatever the device's memory.
const ALWAYS_SHARED_WEIGHTS: usize = 160 << 20;
/// The share of the device's memory that helpers' copies of a larger model may take together.
const HELPERS_SHARE_OF_MEMORY: u64 = 4;

/// How many of `wanted` helpers should hold a copy of a model whose file is `file_bytes` long
/// and whose copy costs a helper `copy_bytes` (`None`: unknown): all for a small file; for a
/// larger one, as many copies as fit in a quarter of the device's memory (`device_gib`, as
/// `navigator.deviceMemory` says), and none where the browser does not say.
/// Bytes are counted in u64: the device's memory is more than a 32-bit `usize` holds.
pub fn helpers_within(
    wanted: usize,
    file_bytes: usize,
    copy_bytes: Option<u64>,
    device_gib: Option<f64>,
) -> usize {
    if file_bytes <= ALWAYS_SHARED_WEIGHTS {
        return wanted;
    }
    let gib = device_gib.filter(|g| g.is_finite() && *g > 0.0);
    match (gib, copy_bytes) {
        (Some(gib), Some(copy)) => {
            let budget = (gib * (1u64 << 30) as f64) as u64 / HELPERS_SHARE_OF_MEMORY;
            let copies = budget / copy.max(1);
            wanted.min(usize::try_from(copies).unwrap_or(usize::MAX))
        }
        _ => 0,
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct HelperState {
    /// The weights it holds (or has been sent), by generation.
    holds: Option<u64>,
    dead: bool,
    /// Batches sent and not answered, oldest first.
    in_flight: Vec<usize>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dispatch {
    helpers: Vec<HelperState>,
    /// The running probe's weights, and its batches not handed out, costliest first.
    generation: Option<u64>,
    queue: VecDeque<usize>,
    /// Per batch of the running probe: taken in.
    done: Vec<bool>,
    finished: usize,
}

impl Dispatch {
    pub fn new(helpers: usize) -> Self {
        Self {
            helpers: vec![HelperState::default(); helpers],
            ..Self::default()
        }
    }

    pub fn helpers(&self) -> usize {
        self.helpers.len()
    }

    /// A new probe of `costs.len()` batches on the weights `generation`; answers of an earlier
    /// probe still under way are ignored from now on.
    pub fn start(&mut self, generation: u64, costs: &[usize]) {
        let mut order: Vec<usize> = (0..costs.len()).collect();
        order.sort_by_key(|&b| std::cmp::Reverse(costs[b]));
        self.generation = Some(generation);
        self.queue = order.into();
        self.done = vec![false; costs.len()];
        self.finished = 0;
        for h in &mut self.helpers {
            h.in_flight.clear();
        }
    }

    /// `helper` has been sent the weights `generation`.
    pub fn sent_weights(&mut self, helper: usize, generation: u64) {
        if let Some(h) = self.helpers.get_mut(helper) {
            h.holds = Some(generation);
        }
    }

    pub fn holds(&self, helper: usize) -> Option<u64> {
        self.helpers.get(helper).and_then(|h| h.holds)
    }

    pub fn alive(&self, helper: usize) -> bool {
        self.helpers.get(helper).is_some_and(|h| !h.dead)
    }

    /// Batches to send now, as (helper, batch): each live helper with the probe's weights
    /// filled up to [`DEPTH`], in the helpers' order.
    pub fn hand_out(&mut self) -> Vec<(usize, usize)> {
        let mut sent = Vec::new();
        for (index, h) in self.helpers.iter_mut().enumerate() {
            while !h.dead && h.holds == self.generation && h.in_flight.len() < DEPTH {
                let Some(batch) = self.queue.pop_front() else {
                    return sent;
                };
                h.in_flight.push(batch);
                sent.push((index, batch));
            }
        }
        sent
    }

    /// A batch could not be sent after all: it goes back to the front of the queue.
    pub fn unsent(&mut self, helper: usize, batch: usize) {
        if let Some(h) = self.helpers.get_mut(helper) {
            h.in_flight.retain(|&b| b != batch);
        }
        self.queue.push_front(batch);
    }

    /// The batch the engine worker computes next, if any.
    pub fn own_next(&mut self) -> Option<usize> {
        while let Some(batch) = self.queue.pop_front() {
            if !self.done[batch] {
                return Some(batch);
            }
        }
        self.helpers.iter().find_map(|h| {
            (!h.dead && h.in_flight.len() >= DEPTH)
                .then(|| h.in_flight.last().copied())
                .flatten()
                .filter(|&b| !self.done[b])
        })
    }

    /// `batch` is answered (by `helper`, or by the engine worker with `None`): whether it is
    /// new, to be taken in. An answer for a batch outside the running probe is not.
    pub fn answered(&mut self, helper: Option<usize>, batch: usize) -> bool {
        if let Some(h) = helper.and_then(|i| self.helpers.get_mut(i)) {
            h.in_flight.retain(|&b| b != batch);
        }
        match self.done.get_mut(batch) {
            Some(done) if !*done => {
                *done = true;
                self.finished += 1;
                true
            }
            _ => false,
        }
    }

    /// `helper` failed (or went silent): its batches go back to the front of the queue, in
    /// their order, and it gets no more.
    pub fn drop_helper(&mut self, helper: usize) {
        let Some(h) = self.helpers.get_mut(helper) else {
            return;
        };
        h.dead = true;
        for batch in std::mem::take(&mut h.in_flight).into_iter().rev() {
            if !self.done[batch] {
                self.queue.push_front(batch);
            }
        }
    }

    /// Helpers holding batches, which the probe may wait for.
    pub fn waiting_on(&self) -> Vec<usize> {
        (0..self.helpers.len())
            .filter(|&i| !self.helpers[i].dead && !self.helpers[i].in_flight.is_empty())
            .collect()
    }

    /// The running probe's batches.
    pub fn batches(&self) -> usize {
        self.done.len()
    }

    pub fn finished(&self) -> bool {
        self.finished == self.done.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_models_go_to_every_helper_large_ones_to_as_many_as_memory_allows() {
        let mb = 1 << 20;
        // the bundled models: every helper, whatever the browser says of its memory
        assert_eq!(helpers_within(3, 25 * mb, Some(125 << 20), None), 3);
        assert_eq!(helpers_within(3, 160 * mb, None, Some(0.5)), 3);
        // bert-base in f32: 440 MB file, 440 MB tensors, 440 MB packed, about 1.3 GB a copy
        let (file, copy) = (440 * mb, Some(1320u64 << 20));
        assert_eq!(
            helpers_within(3, file, copy, Some(8.0)),
            1,
            "2 GiB of 8 for helpers"
        );
        assert_eq!(helpers_within(3, file, copy, Some(16.0)), 3);
        assert_eq!(
            helpers_within(1, file, copy, Some(16.0)),
            1,
            "never more than wanted"
        );
        assert_eq!(
            helpers_within(3, file, copy, Some(4.0)),
            0,
            "1 GiB holds no copy"
        );
        assert_eq!(helpers_within(3, file, copy, None), 0, "no figure: none");
        assert_eq!(helpers_within(3, file, copy, Some(f64::NAN)), 0);
        assert_eq!(
            helpers_within(3, file, None, Some(16.0)),
            0,
            "not safetensors"
        );
        // more memory than 32 bits count (the browser's usize): still counted whole
        assert_eq!(helpers_within(3, file, Some(5u64 << 30), Some(32.0)), 1);
    }

    #[test]
    fn batches_go_out_costliest_first_to_helpers_with_the_weights_up_to_the_depth() {
        let mut d = Dispatch::new(2);
        d.start(1, &[5, 50, 20, 40, 10, 30]);
        // no helper has these weights yet: nothing goes out, the engine worker works
        assert!(d.hand_out().is_empty());
        d.sent_weights(0, 1);
        d.sent_weights(1, 0); // an older copy: not for this probe
        assert_eq!(
            d.hand_out(),
            [(0, 1), (0, 3)],
            "the costliest two to the helper"
        );
        assert!(d.hand_out().is_empty(), "it is full");
        assert_eq!(
            d.own_next(),
            Some(5),
            "then the next costliest for the engine worker"
        );
        d.sent_weights(1, 1);
        assert_eq!(d.hand_out(), [(1, 2), (1, 4)]);
        assert_eq!(d.own_next(), Some(0));
        // nothing left in the queue: the worker takes the waiting batch of a full helper
        assert_eq!(d.own_next(), Some(3));
        assert!(d.answered(None, 3));
        assert!(!d.answered(Some(0), 3), "answered twice: taken in once");
        assert_eq!(d.waiting_on(), [0, 1]);
    }

    #[test]
    fn a_dropped_helper_gives_its_batches_back_first_and_gets_no_more() {
        let mut d = Dispatch::new(2);
        d.start(7, &[9, 8, 7, 6, 5]);
        d.sent_weights(0, 7);
        d.sent_weights(1, 7);
        assert_eq!(d.hand_out(), [(0, 0), (0, 1), (1, 2), (1, 3)]);
        assert!(d.answered(Some(1), 2));
        d.drop_helper(0);
        assert!(!d.alive(0));
        assert_eq!(d.waiting_on(), [1]);
        // its two batches are next, in their order, before the one never sent
        assert_eq!(d.hand_out(), [(1, 0)]);
        assert_eq!(d.own_next(), Some(1));
        assert_eq!(d.own_next(), Some(4));
        for (helper, batch) in [(None, 1), (None, 4), (Some(1), 0), (Some(1), 3)] {
            assert!(d.answered(helper, batch));
        }
        assert!(d.finished());
        // a late answer from the dropped helper changes nothing
        assert!(!d.answered(Some(0), 0));
    }

    #[test]
    fn a_batch_that_could_not_be_sent_is_next_and_a_new_probe_forgets_the_old() {
        let mut d = Dispatch::new(1);
        d.start(1, &[3, 2, 1]);
        d.sent_weights(0, 1);
        assert_eq!(d.hand_out(), [(0, 0), (0, 1)]);
        d.unsent(0, 1);
        assert_eq!(d.own_next(), Some(1));
        d.start(1, &[1, 2]);
        assert!(
            d.waiting_on().is_empty(),
            "the old probe's batches are not waited for"
        );
        assert!(!d.finished());
        assert_eq!(d.hand_out(), [(0, 1), (0, 0)]);
        // an answer beyond this probe's batches is not taken in
        assert!(!d.answered(Some(0), 2));
    }
}
