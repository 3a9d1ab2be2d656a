//! The canonical document and its value types — "parse, don't validate".
//!
//! Every value that can be wrong (`AgencyId`, `DivisionCode`, `IdNumber`,
//! `CaseNo`, `MessageType`, the GB code lists, dates) is a type that can only
//! be built by a parser reporting every problem as a
//! [`Violation`](crate::violation::Violation) with a stable code from
//! [`codes`] and the JSON pointer it was given. Code past the validator takes
//! these types and never re-checks them.
//!
//! This module must never log, print or put into a violation message the
//! value of a field: many are personal data (see
//! [`document::PERSONAL_DATA_PATHS`]). It does no I/O and knows nothing of
//! dialects, schemas or routing.

pub mod agency;
pub mod bodies;
pub mod case_no;
pub mod codes;
pub mod codes_gb;
pub mod date;
pub mod division;
pub mod document;
pub mod id_number;
pub mod message_type;

pub use agency::{AgencyId, AgencyKind};
pub use bodies::{
    ArrestDecision, ArrestDecisionBody, ArrestRequest, AssessmentExtension, AssessmentOpinion,
    AssessmentRequest, AssessmentUnable, Breach, Committal, Conclusion, CorrectionItems,
    HandoverReceipt, Materials, Procedure, ReportStatus, RevocationKind, RevocationProposal,
    Ruling, RulingDecision,
};
pub use case_no::CaseNo;
pub use codes_gb::{CorrectionType, Ethnicity, Gender};
pub use division::DivisionCode;
pub use document::{
    is_personal_data, redact_personal_data, Attachment, Body, CanonicalDocument, Envelope,
    HandoverNotice, Residence, Subject, Term, PERSONAL_DATA_PATHS,
};
pub use id_number::IdNumber;
pub use message_type::{Flow, MessageType};
