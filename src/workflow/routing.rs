//! Law-based routing: who a document goes to and who must get a copy (抄送).
//!
//! The sender names the primary recipients; the gateway adds the copies the
//! law requires. For a handover notice (社区矫正法 第20条, 实施办法 第9条) the
//! procuratorate and the police of the executing place (执行地) are copied.
//! Every recipient and copy must be a registered agency.

use crate::model::{AgencyKind, CanonicalDocument, MessageType};
use crate::registry::Registry;
use crate::violation::{Violation, Violations};

/// Where a document goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub recipients: Vec<String>,
    pub copies: Vec<String>,
}

/// Checks the sender's permission for the message type, that every named
/// agency is registered, and adds the mandatory copies.
pub fn route(doc: &CanonicalDocument, registry: &Registry) -> Result<Route, Violations> {
    let mut problems = Violations::new();
    let sender_kind = doc.envelope.sender.kind();
    if doc.envelope.message_type == MessageType::HandoverNotice
        && !matches!(
            sender_kind,
            AgencyKind::Court | AgencyKind::Prison | AgencyKind::PrisonAdmin | AgencyKind::Police
        )
    {
        problems.push(Violation::new(
            "message_type_not_permitted",
            "/sender",
            "只有决定机关（法院、监狱、监狱管理局、公安机关）可以发送交付执行通知",
            "only a decision organ (court, prison, prison administration, police) may send a handover notice",
        ));
    }
    for (i, agency) in doc.envelope.recipients.iter().enumerate() {
        if registry.get(agency.as_str()).is_none() {
            problems.push(Violation::new(
                "unknown_recipient",
                format!("/recipients/{i}"),
                "接收机关未在机构名录中登记",
                "the recipient is not a registered agency",
            ));
        }
    }
    for (i, agency) in doc.envelope.copies.iter().enumerate() {
        if registry.get(agency.as_str()).is_none() {
            problems.push(Violation::new(
                "unknown_copy_recipient",
                format!("/copies/{i}"),
                "抄送机关未在机构名录中登记",
                "the copy recipient is not a registered agency",
            ));
        }
    }
    let executing: Vec<_> = doc
        .envelope
        .recipients
        .iter()
        .filter(|a| a.kind() == AgencyKind::Corrections)
        .collect();
    if doc.envelope.message_type == MessageType::HandoverNotice && executing.is_empty() {
        problems.push(Violation::new(
            "recipient_not_permitted",
            "/recipients",
            "交付执行通知必须发送给执行地社区矫正机构",
            "a handover notice must be addressed to the corrections agency of the executing place",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let recipients: Vec<String> = doc
        .envelope
        .recipients
        .iter()
        .map(|a| a.as_str().to_string())
        .collect();
    let mut copies: Vec<String> = Vec::new();
    let mut add_copy = |id: &str| {
        if !recipients.iter().any(|r| r == id)
            && !copies.iter().any(|c| c == id)
            && id != doc.envelope.sender.as_str()
        {
            copies.push(id.to_string());
        }
    };
    for agency in &doc.envelope.copies {
        add_copy(agency.as_str());
    }
    if doc.envelope.message_type == MessageType::HandoverNotice {
        for place in &executing {
            for kind in [AgencyKind::Procuratorate, AgencyKind::Police] {
                if let Some(agency) = registry.of_kind_in(kind, place.division().as_str()) {
                    add_copy(agency.id.as_str());
                }
            }
        }
    }
    Ok(Route { recipients, copies })
}
