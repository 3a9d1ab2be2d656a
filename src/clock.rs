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

use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    /// Added to the system time; zero in production.
    shift: Duration,
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
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.shift
    }

    /// Whether this clock is shifted (shown in logs so a shifted gateway is never mistaken for a live one).
    pub fn is_shifted(&self) -> bool {
        !self.shift.is_zero()
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
}
