//! `MessageType` — 文书类型: every message of the three flows of domain.md
//! (交付接收 handover, 调查评估 assessment, 撤销/收监 revocation).
//!
//! The list is closed on purpose: a new message type is a legal change that
//! also needs a schema, a flow transition and mappings, so it must show up as
//! a compile error in every `match`, not slip through as a string.

use std::fmt;

use crate::model::codes;
use crate::violation::Violation;

/// The flow a message type belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// 交付接收 (《社区矫正法》第20–21条)
    Handover,
    /// 调查评估 (第18条)
    Assessment,
    /// 撤销缓刑/假释、收监执行 (第46–50条)
    Revocation,
}

impl Flow {
    pub const ALL: [Flow; 3] = [Flow::Handover, Flow::Assessment, Flow::Revocation];

    /// `handover`, `assessment` or `revocation`.
    pub fn parse(code: &str) -> Option<Flow> {
        Flow::ALL.into_iter().find(|f| f.as_str() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handover => "handover",
            Self::Assessment => "assessment",
            Self::Revocation => "revocation",
        }
    }
}

macro_rules! message_types {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal => $flow:ident ),+ $(,)?) => {
        /// A message type of domain.md, as it appears in `message_type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MessageType { $( $(#[$doc])* $variant ),+ }

        impl MessageType {
            /// Every message type, in the order of domain.md.
            pub const ALL: &'static [MessageType] = &[ $( MessageType::$variant ),+ ];

            /// The wire code (`handover.notice`).
            pub fn as_str(self) -> &'static str {
                match self { $( MessageType::$variant => $code ),+ }
            }

            /// The flow the type belongs to.
            pub fn flow(self) -> Flow {
                match self { $( MessageType::$variant => Flow::$flow ),+ }
            }
        }
    };
}

message_types! {
    /// 执行通知 + 法律文书
    HandoverNotice = "handover.notice" => Handover,
    /// 回执
    HandoverReceipt = "handover.receipt" => Handover,
    /// 补正/补齐通知
    HandoverCorrectionRequest = "handover.correction_request" => Handover,
    /// 补齐/更正
    HandoverCorrection = "handover.correction" => Handover,
    /// 报到情况
    HandoverReportStatus = "handover.report_status" => Handover,
    /// 调查评估委托函
    AssessmentRequest = "assessment.request" => Assessment,
    /// 补充材料通知
    AssessmentSupplementRequest = "assessment.supplement_request" => Assessment,
    /// 补充材料
    AssessmentSupplement = "assessment.supplement" => Assessment,
    /// 调查评估意见书
    AssessmentOpinion = "assessment.opinion" => Assessment,
    /// 延期
    AssessmentExtension = "assessment.extension" => Assessment,
    /// 无法评估
    AssessmentUnable = "assessment.unable" => Assessment,
    /// 撤销缓刑/假释建议书, 收监执行建议书
    RevocationProposal = "revocation.proposal" => Revocation,
    /// 提请逮捕
    RevocationArrestRequest = "revocation.arrest_request" => Revocation,
    /// 逮捕决定
    RevocationArrestDecision = "revocation.arrest_decision" => Revocation,
    /// 撤销裁定 / 收监执行决定
    RevocationRuling = "revocation.ruling" => Revocation,
    /// 收监执行回执
    RevocationCommittal = "revocation.committal" => Revocation,
}

impl MessageType {
    /// The type with wire code `s`, if any.
    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// Parses `message_type`; the only problem is `unknown_message_type` at `path`.
    pub fn parse(s: &str, path: &str) -> Result<Self, Violation> {
        Self::from_code(s).ok_or_else(|| {
            Violation::new(
                codes::UNKNOWN_MESSAGE_TYPE,
                path,
                "文书类型不是已定义的类型之一",
                "message_type is not one of the defined message types",
            )
        })
    }
}

impl MessageType {
    /// Whether the document must name its person (`subject` required): every
    /// type does, because the person (his or her ID number) is the key both
    /// agencies' clerks file and find a case by; an answer that named only
    /// the gateway id it answers could not be matched by a partner that does
    /// not keep gateway ids.
    pub fn requires_subject(self) -> bool {
        true
    }

    /// Whether the subject must be complete, with `ethnicity` and `residence`:
    /// the two documents the executing place is decided from and the
    /// corrections agency opens its file with (执行通知, 调查评估委托函). Other
    /// documents may name the person by name, gender, birth date and ID number
    /// only (the police committal receipt does).
    pub fn requires_full_subject(self) -> bool {
        matches!(self, Self::HandoverNotice | Self::AssessmentRequest)
    }

    /// Whether the document opens an exchange about a person: the 执行通知,
    /// the 调查评估委托函, the 撤销/收监建议书 and the 提请逮捕.
    pub fn opens_exchange(self) -> bool {
        matches!(
            self,
            Self::HandoverNotice
                | Self::AssessmentRequest
                | Self::RevocationProposal
                | Self::RevocationArrestRequest
        )
    }

    /// Whether the document answers or follows an earlier one and so must name
    /// it in `in_reply_to`: every type that does not open an exchange, except
    /// the 收监执行回执, which the police or prison sends on the strength of the
    /// ruling it names (`body.ruling_ref`) and may send without ever having
    /// received the gateway's copy of that ruling.
    pub fn requires_in_reply_to(self) -> bool {
        !self.opens_exchange() && self != Self::RevocationCommittal
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_sixteen_round_trip() {
        assert_eq!(MessageType::ALL.len(), 16);
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_code(t.as_str()), Some(*t));
            assert!(t.as_str().starts_with(t.flow().as_str()));
        }
        let v = MessageType::parse("handover.noticee", "/message_type").expect_err("unknown");
        assert_eq!(
            (v.code, v.path.as_str()),
            ("unknown_message_type", "/message_type")
        );
    }
}
