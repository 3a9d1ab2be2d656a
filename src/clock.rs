//! The gateway's one source of "now".
//!
//! Every instant the gateway acts on — a submission's `received_at`, the
//! `created` window of a signature, certificate validity, the start and the
//! expiry of legal periods — is read from the [`Clock`] in the shared state,
//! never from the system clock directly. Production runs the system clock.
//! Tests and the `demo` command shift it, so that a whole flow can be run
//! through real HTTP at a date whose holidays matter (the 2024 National Day
//! week, say) while time still passes normally. The shift is not a setting: a
//! misconfigured legal clock would be a silent disaster, so only code can set it.

use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// Added to the system time; zero in production.
    shift: Duration,
    /// For the `demo` command, which replays a month through one running
    /// gateway: a shift in nanoseconds that its [`ClockDial`] moves, read
    /// instead of `shift`. A `'static` cell keeps `Clock` `Copy` (partners
    /// and the gateway hold copies); one is made per demo run and lives as
    /// long as the process.
    dial: Option<&'static AtomicI64>,
}

impl PartialEq for Clock {
    fn eq(&self, other: &Clock) -> bool {
        self.shift == other.shift
            && match (self.dial, other.dial) {
                (Some(a), Some(b)) => std::ptr::eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Eq for Clock {}

/// Moves the clocks made by [`Clock::dialled`]: every copy reads the new time at once.
#[derive(Debug)]
pub struct ClockDial(&'static AtomicI64);

impl ClockDial {
    /// From now on the clocks read `at` and run on at the system's pace.
    pub fn set(&self, at: OffsetDateTime) {
        let shift = at - OffsetDateTime::now_utc();
        self.0
            .store(shift.whole_nanoseconds() as i64, Ordering::SeqCst);
    }

    /// Back to the system time.
    pub fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `at` now and runs on from there at the system's pace.
    pub fn starting_at(at: OffsetDateTime) -> Clock {
        Clock {
            shift: at - OffsetDateTime::now_utc(),
            dial: None,
        }
    }

    /// A clock that reads `at` now, and the dial that moves it later (the
    /// demo's month: one gateway, its partners and its jobs share the copies).
    pub fn dialled(at: OffsetDateTime) -> (Clock, ClockDial) {
        let cell: &'static AtomicI64 = Box::leak(Box::new(AtomicI64::new(0)));
        let dial = ClockDial(cell);
        dial.set(at);
        (
            Clock {
                shift: Duration::ZERO,
                dial: Some(cell),
            },
            dial,
        )
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.current_shift()
    }

    fn current_shift(&self) -> Duration {
        match self.dial {
            Some(cell) => Duration::nanoseconds(cell.load(Ordering::SeqCst)),
            None => self.shift,
        }
    }

    /// Whether this clock is shifted (shown in logs so a shifted gateway is never mistaken for a live one).
    pub fn is_shifted(&self) -> bool {
        !self.current_shift().is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_starts_where_asked_and_runs_on() {
        let at = time::macros::datetime!(2024-09-30 09:00 +8);
        let clock = Clock::starting_at(at);
        let first = clock.now();
        assert!((first - at).abs() < Duration::seconds(1));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(clock.now() > first);
        assert!(clock.is_shifted());
        assert!(!Clock::system().is_shifted());
        assert!((Clock::system().now() - OffsetDateTime::now_utc()).abs() < Duration::seconds(1));
    }

    #[test]
    fn a_dialled_clock_and_its_copies_move_together() {
        let at = time::macros::datetime!(2024-09-30 09:00 +8);
        let (clock, dial) = Clock::dialled(at);
        let copy = clock;
        assert!((copy.now() - at).abs() < Duration::seconds(1));
        let later = time::macros::datetime!(2024-10-08 09:00 +8);
        dial.set(later);
        assert!((clock.now() - later).abs() < Duration::seconds(1));
        assert!((copy.now() - later).abs() < Duration::seconds(1));
        assert_eq!(clock, copy);
        assert_ne!(clock, Clock::system());
        dial.reset();
        assert!(!copy.is_shifted());
    }
}
