//! Flows, routing rules, the official calendar and legal deadlines.
//!
//! This module owns what the law says about *when* and *to whom* a document
//! moves between agencies: the three flows (handover 交付接收, investigation
//! assessment 调查评估, revocation 撤销/收监), the routing and copy (抄送)
//! rules, and the deadlines each step must meet.
//!
//! - [`calendar`](crate::workflow::calendar): the State Council's official
//!   days off and makeup working days (调休), loaded from
//!   `rules/calendar/cn-official-days.tsv`.
//! - [`period`](crate::workflow::period): legal periods as data
//!   (`rules/periods.toml`, with province overrides) and how a period turns
//!   into a due instant (刑事诉讼法 第105条).
//!
//! Routing and the per-flow state machines live here too, in their own
//! submodules, and take their periods from
//! [`PeriodRules`](crate::workflow::period::PeriodRules).
//!
//! What this module must never do: hard-code a period or a holiday (both are
//! data a maintainer edits), guess about a year the calendar does not cover,
//! or touch storage, HTTP or formats (it computes; other stages act).

pub mod calendar;
pub mod deadlines;
pub mod flows;
pub mod handover;
pub mod period;
pub mod routing;
