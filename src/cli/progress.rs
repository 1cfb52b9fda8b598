//! Progress of long commands. On a terminal, indicatif's bar. Where stderr is a file or a pipe
//! (a run left in the background with its output in a log, CI) indicatif draws nothing, and an
//! hour of `walf pretrain` or `walf tune` would say nothing until its epoch ends: there a plain
//! line is written now and then instead, with the count, the rate and the time left.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a progress line is written when stderr is not a terminal, in seconds (the
/// environment variable of that name; default 30).
pub const EVERY_ENV: &str = "WALF_PROGRESS_SECONDS";
const DEFAULT_EVERY: Duration = Duration::from_secs(30);

pub(crate) struct Progress {
    bar: ProgressBar,
    lines: Option<RefCell<Lines>>,
}

impl Progress {
    /// `what` names the work ("probing", "epoch 1/3"), `unit` what is counted ("sentences",
    /// "steps"); `template` is the terminal bar's indicatif template.
    pub fn new(what: &str, unit: &'static str, total: u64, template: &str) -> Self {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        let lines = (!std::io::stderr().is_terminal())
            .then(|| RefCell::new(Lines::new(what, unit, total, every(), Instant::now())));
        Self { bar, lines }
    }

    pub fn set_length(&self, total: u64) {
        self.bar.set_length(total);
        if let Some(lines) = &self.lines {
            lines.borrow_mut().total = total;
        }
    }

    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        if let Some(lines) = &self.lines {
            let mut lines = lines.borrow_mut();
            lines.pos = pos;
            if let Some(line) = lines.due(Instant::now()) {
                eprintln!("{line}");
            }
        }
    }

    pub fn inc(&self, n: u64) {
        self.set_position(self.bar.position() + n);
    }

    /// A note shown after the count (the last step's loss, say).
    pub fn set_message(&self, message: String) {
        if let Some(lines) = &self.lines {
            lines.borrow_mut().message.clone_from(&message);
        }
        self.bar.set_message(message);
    }

    /// The work is done: the bar goes (the caller prints its own summary).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// The work failed: the bar stays where it stopped.
    pub fn abandon(&self) {
        self.bar.abandon();
    }
}

fn every() -> Duration {
    std::env::var(EVERY_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(DEFAULT_EVERY, Duration::from_secs_f64)
}

/// The state behind the plain lines, kept apart from the clock so it can be tested.
struct Lines {
    what: String,
    unit: &'static str,
    total: u64,
    pos: u64,
    message: String,
    started: Instant,
    last: Instant,
    every: Duration,
}

impl Lines {
    fn new(what: &str, unit: &'static str, total: u64, every: Duration, now: Instant) -> Self {
        Self {
            what: what.to_string(),
            unit,
            total,
            pos: 0,
            message: String::new(),
            started: now,
            last: now,
            every,
        }
    }

    /// The line to write at `now`, if one is due: `every` since the last, and not for the end
    /// (the command's own summary follows it).
    fn due(&mut self, now: Instant) -> Option<String> {
        if self.pos == 0 || self.pos >= self.total || now.duration_since(self.last) < self.every {
            return None;
        }
        self.last = now;
        Some(self.line(now))
    }

    fn line(&self, now: Instant) -> String {
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let per = elapsed / self.pos.max(1) as f64;
        let left = per * self.total.saturating_sub(self.pos) as f64;
        let mut line = format!(
            "{}: {}/{} {} ({:.0}%), {} each, about {} left",
            self.what,
            self.pos,
            self.total,
            self.unit,
            100.0 * self.pos as f64 / self.total.max(1) as f64,
            short_duration(per),
            short_duration(left),
        );
        if !self.message.is_empty() {
            line.push_str(", ");
            line.push_str(&self.message);
        }
        line
    }
}

fn short_duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 90.0 {
        format!("{seconds:.1} s")
    } else if seconds < 5400.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_written_every_interval_with_rate_and_time_left() {
        let t0 = Instant::now();
        let mut lines = Lines::new("epoch 1/2", "steps", 100, Duration::from_secs(30), t0);
        lines.pos = 10;
        assert_eq!(lines.due(t0 + Duration::from_secs(20)), None, "not yet due");
        lines.message = "loss 4.512".into();
        assert_eq!(
            lines.due(t0 + Duration::from_secs(40)).as_deref(),
            Some("epoch 1/2: 10/100 steps (10%), 4.0 s each, about 6 min left, loss 4.512")
        );
        lines.pos = 11;
        assert_eq!(
            lines.due(t0 + Duration::from_secs(50)),
            None,
            "30 s since the last line"
        );
        lines.pos = 100;
        assert_eq!(
            lines.due(t0 + Duration::from_secs(400)),
            None,
            "the end has its summary"
        );
    }

    #[test]
    fn durations_read_at_their_scale() {
        assert_eq!(short_duration(0.25), "250 ms");
        assert_eq!(short_duration(42.0), "42.0 s");
        assert_eq!(short_duration(600.0), "10 min");
        assert_eq!(short_duration(7200.0), "2.0 h");
    }
}
