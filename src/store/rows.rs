//! The rows an accepted document writes (everything but its log entry and
//! receipt, which `group.rs` writes once per group), for a whole group at a
//! time: one statement per table for up to [`INSERT_CHUNK`] rows.
//!
//! Two ways to use them, both in `group.rs`:
//! - [`write_group`], the usual one: two reads find the group's replays and
//!   duplicates, a moved case is found by its conditional `UPDATE`, and then
//!   each table gets the rows of all the group's new documents at once.
//!   Per document only an answer's case `UPDATE` remains a statement of its
//!   own; a group of 44 costs ~40 statements instead of ~700 (every one a
//!   round trip to sqlx's SQLite worker thread: docs/benchmarks.md §6).
//! - [`write_document`], one document in a savepoint, for when the first way
//!   failed (another instance's twin document committed after our reads, on
//!   PostgreSQL; or a database error that has to be pinned on one document).
//!   It catches the unique violations themselves, so it needs no reads first.

use std::collections::{HashMap, HashSet};

use sqlx::{AnyConnection, Connection, Row};

use super::sql::{insert_many, insert_many_then, is_sqlite, many, values_sql, INSERT_CHUNK};
use super::{
    is_unique_violation, CaseUpdate, CaseWrite, NewCase, NewDeadline, NewDocument, StoreError,
};

/// What became of a document inside the group's transaction. The log
/// append and the receipt come after, once for the whole group (`group.rs`).
#[derive(Clone)]
pub(super) enum Written {
    /// Stored; its leaf and receipt are still to be written.
    New,
    /// Nothing written: the same sender already submitted these bytes, in an
    /// earlier transaction (here is its receipt) or earlier in this group
    /// (the receipt of that document, once the group has written it).
    Duplicate(Vec<u8>),
    DuplicateInGroup {
        original: String,
    },
    Replayed,
    CaseMoved,
}

/// `(a = $1 AND b = $2) OR (a = $3 AND b = $4) …` (`?` on SQLite, see
/// [`super::sql::values_sql`]): SQLite and PostgreSQL both answer it from the two-column
/// unique index (SQLite scans the whole table for the row-value form
/// `(a, b) IN (VALUES …)`).
fn pairs_sql(conn: &AnyConnection, a: &str, b: &str, pairs: usize) -> String {
    let sqlite = is_sqlite(conn);
    (0..pairs)
        .map(|n| {
            if sqlite {
                format!("({a} = ? AND {b} = ?)")
            } else {
                format!("({a} = ${} AND {b} = ${})", 2 * n + 1, 2 * n + 2)
            }
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Which of the documents' signatures were used before.
async fn seen_signatures(
    conn: &mut AnyConnection,
    docs: &[&NewDocument],
) -> Result<HashSet<(String, String)>, StoreError> {
    let mut seen = HashSet::new();
    for chunk in docs.chunks(INSERT_CHUNK) {
        let sql = format!(
            "SELECT keyid, signature_sha256 FROM seen_signatures WHERE {}",
            pairs_sql(conn, "keyid", "signature_sha256", chunk.len())
        );
        let mut query = many(&*conn, &sql, chunk.len());
        for doc in chunk {
            query = query
                .bind(&doc.signature.keyid)
                .bind(&doc.signature.signature_sha256);
        }
        for row in query.fetch_all(&mut *conn).await? {
            seen.insert((row.get(0), row.get(1)));
        }
    }
    Ok(seen)
}

/// The documents already stored under the same (sender, body) as `docs`:
/// (sender, body_sha256) → what a resubmission of those bytes is.
async fn stored_originals(
    conn: &mut AnyConnection,
    docs: &[&NewDocument],
) -> Result<HashMap<(String, String), Written>, StoreError> {
    let mut stored = HashMap::new();
    for chunk in docs.chunks(INSERT_CHUNK) {
        let sql = format!(
            "SELECT d.sender, d.body_sha256, d.id, r.body FROM documents d \
             LEFT JOIN receipts r ON r.document_id = d.id WHERE {}",
            pairs_sql(conn, "d.sender", "d.body_sha256", chunk.len())
        );
        let mut query = many(&*conn, &sql, chunk.len());
        for doc in chunk {
            query = query.bind(&doc.sender).bind(&doc.body_sha256);
        }
        for row in query.fetch_all(&mut *conn).await? {
            // No receipt yet: the original is an earlier document of this
            // group (read in the group's transaction), whose receipt the
            // group writes after its documents.
            let duplicate = match row.get::<Option<Vec<u8>>, _>(3) {
                Some(receipt) => Written::Duplicate(receipt),
                None => Written::DuplicateInGroup {
                    original: row.get(2),
                },
            };
            stored.insert((row.get(0), row.get(1)), duplicate);
        }
    }
    Ok(stored)
}

/// Writes a group's documents in the group's transaction, replays,
/// duplicates and moved cases left out, and says what became of each. The
/// checks run in group order, so a document meets the documents before it in
/// the group as it would meet them committed: the second use of a signature
/// is a replay, the second copy of a body a duplicate of the first.
pub(super) async fn write_group(
    conn: &mut AnyConnection,
    docs: &[&NewDocument],
) -> Result<Vec<Written>, StoreError> {
    let seen = seen_signatures(conn, docs).await?;
    let stored = stored_originals(conn, docs).await?;
    let moved_at_once = move_cases_at_once(conn, docs, &seen, &stored).await?;
    let mut signatures_used: HashSet<(&str, &str)> = HashSet::new();
    let mut bodies_stored: HashMap<(&str, &str), &str> = HashMap::new();
    let mut written = Vec::with_capacity(docs.len());
    let mut new = Vec::with_capacity(docs.len());
    for doc in docs {
        let signature = (
            doc.signature.keyid.as_str(),
            doc.signature.signature_sha256.as_str(),
        );
        let body = (doc.sender.as_str(), doc.body_sha256.as_str());
        let outcome = if signatures_used.contains(&signature)
            || seen.contains(&(signature.0.to_owned(), signature.1.to_owned()))
        {
            Written::Replayed
        } else if let Some(duplicate) = stored.get(&(body.0.to_owned(), body.1.to_owned())) {
            // Read before this group wrote anything: a committed original,
            // which always has its receipt (a `DuplicateInGroup` here could
            // not be resolved and fails the attempt). A second resubmission
            // in the same group gets the same answer.
            duplicate.clone()
        } else if let Some(original) = bodies_stored.get(&body) {
            Written::DuplicateInGroup {
                original: (*original).to_owned(),
            }
        } else if !match moved_at_once.get(doc.id.as_str()) {
            Some(moved) => *moved,
            None => move_case(conn, doc).await?,
        } {
            Written::CaseMoved
        } else {
            signatures_used.insert(signature);
            bodies_stored.insert(body, &doc.id);
            new.push(*doc);
            Written::New
        };
        written.push(outcome);
    }
    insert_seen(conn, &new).await?;
    insert_documents(conn, &new).await?;
    insert_details(conn, &new).await?;
    Ok(written)
}

/// The answers' case moves of a group in one statement per
/// [`INSERT_CHUNK`] answers (a conditional `UPDATE … FROM` a list of
/// moves): document id → whether its case moved. Only where that cannot
/// change an outcome: for the first answer to each case in the group, and
/// only if no signature or body occurs twice in the group (then whether an
/// earlier document is stored, which its case move decides, could decide
/// whether a later one is a replay or a duplicate). Every other answer moves
/// its case on its own, in group order, as before ([`move_case`]).
async fn move_cases_at_once<'d>(
    conn: &mut AnyConnection,
    docs: &[&'d NewDocument],
    seen: &HashSet<(String, String)>,
    stored: &HashMap<(String, String), Written>,
) -> Result<HashMap<&'d str, bool>, StoreError> {
    let mut moved = HashMap::new();
    let mut signatures = HashSet::new();
    let mut bodies = HashSet::new();
    for doc in docs {
        let signature = (&doc.signature.keyid, &doc.signature.signature_sha256);
        if !signatures.insert(signature) || !bodies.insert((&doc.sender, &doc.body_sha256)) {
            return Ok(moved);
        }
    }
    let mut cases = HashSet::new();
    let moves: Vec<(&str, &CaseUpdate, i64)> = docs
        .iter()
        .filter(|doc| {
            let signature = (
                doc.signature.keyid.clone(),
                doc.signature.signature_sha256.clone(),
            );
            !seen.contains(&signature)
                && !stored.contains_key(&(doc.sender.clone(), doc.body_sha256.clone()))
        })
        .filter_map(|doc| match &doc.case {
            Some(CaseWrite::Advance(update)) => Some((doc.id.as_str(), update, doc.received_at_ms)),
            _ => None,
        })
        .filter(|(_, update, _)| cases.insert(update.id.as_str()))
        .collect();
    for chunk in moves.chunks(INSERT_CHUNK) {
        let mut sql = values_sql(
            conn,
            "WITH v (id, from_state, to_state, at) AS (VALUES ",
            4,
            chunk.len(),
        );
        sql.push_str(
            ") UPDATE cases SET state = v.to_state, updated_at = v.at FROM v \
             WHERE cases.id = v.id AND cases.state = v.from_state RETURNING cases.id",
        );
        let mut query = many(&*conn, &sql, chunk.len());
        for (_, update, at) in chunk {
            query = query
                .bind(&update.id)
                .bind(&update.from_state)
                .bind(&update.to_state)
                .bind(*at);
        }
        let done: HashSet<String> = query
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for (doc, update, _) in chunk {
            moved.insert(*doc, done.contains(&update.id));
        }
    }
    Ok(moved)
}

/// Writes an accepted document inside a savepoint of the group's
/// transaction. A replay, a duplicate or a moved case rolls the savepoint
/// back and leaves the other documents of the group alone.
pub(super) async fn write_document(
    conn: &mut AnyConnection,
    doc: &NewDocument,
) -> Result<Written, StoreError> {
    let mut tx = conn.begin().await?;
    let seen = insert_seen(&mut tx, &[doc]).await;
    if is_unique_violation(&seen) {
        tx.rollback().await?;
        return Ok(Written::Replayed);
    }
    seen?;
    let inserted = insert_documents(&mut tx, &[doc]).await;
    if is_unique_violation(&inserted) {
        tx.rollback().await?;
        let mut stored = stored_originals(conn, &[doc]).await?;
        let key = (doc.sender.clone(), doc.body_sha256.clone());
        return match stored.remove(&key) {
            Some(duplicate) => Ok(duplicate),
            // The other submission's transaction has not committed yet:
            // cannot happen on SQLite (one writer), and on PostgreSQL the
            // unique check waits for it to commit (had it rolled back, our
            // insert would have succeeded). Treat as a database error.
            None => Err(StoreError::Database(sqlx::Error::RowNotFound)),
        };
    }
    inserted?;
    if !move_case(&mut tx, doc).await? {
        tx.rollback().await?;
        return Ok(Written::CaseMoved);
    }
    insert_details(&mut tx, &[doc]).await?;
    tx.commit().await?;
    Ok(Written::New)
}

/// An answer's case moves to its next state if no one moved it first
/// (optimistic: the state read before the transaction must still be the
/// state now); false when it had moved. True for a document that moves no case.
async fn move_case(conn: &mut AnyConnection, doc: &NewDocument) -> Result<bool, StoreError> {
    let Some(CaseWrite::Advance(update)) = &doc.case else {
        return Ok(true);
    };
    let moved =
        sqlx::query("UPDATE cases SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(&update.to_state)
            .bind(doc.received_at_ms)
            .bind(&update.id)
            .bind(&update.from_state)
            .execute(&mut *conn)
            .await?;
    Ok(moved.rows_affected() == 1)
}

fn insert_seen<'a>(
    conn: &'a mut AnyConnection,
    docs: &'a [&NewDocument],
) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'a {
    insert_many(
        conn,
        "INSERT INTO seen_signatures (keyid, signature_sha256, seen_at) VALUES ",
        3,
        docs,
        |q, doc| {
            q.bind(&doc.signature.keyid)
                .bind(&doc.signature.signature_sha256)
                .bind(doc.received_at_ms)
        },
    )
}

fn insert_documents<'a>(
    conn: &'a mut AnyConnection,
    docs: &'a [&NewDocument],
) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'a {
    insert_many(
        conn,
        "INSERT INTO documents (id, sender, message_type, dialect, content_type, body_sha256, original, \
         canonical, document_no, case_id, received_at) VALUES ",
        11,
        docs,
        |q, doc| {
            q.bind(&doc.id)
                .bind(&doc.sender)
                .bind(&doc.message_type)
                .bind(&doc.dialect)
                .bind(&doc.content_type)
                .bind(&doc.body_sha256)
                .bind(&doc.original)
                .bind(&doc.canonical)
                .bind(&doc.document_no)
                .bind(doc.case.as_ref().map(|c| c.id()))
                .bind(doc.received_at_ms)
        },
    )
}

/// Everything of the documents (already in `documents`) but their log
/// entries and receipts: parties, subject, signature evidence, case rows,
/// attachments, envelope and deliveries.
async fn insert_details(conn: &mut AnyConnection, docs: &[&NewDocument]) -> Result<(), StoreError> {
    let parties: Vec<(&str, &str, &str)> = docs
        .iter()
        .flat_map(|doc| {
            let recipients = doc.recipients.iter().map(|a| (a.as_str(), "recipient"));
            let copies = doc.copies.iter().map(|a| (a.as_str(), "copy"));
            recipients
                .chain(copies)
                .map(|(agency, role)| (doc.id.as_str(), agency, role))
        })
        .collect();
    insert_many(
        conn,
        "INSERT INTO document_parties (document_id, agency_id, role) VALUES ",
        3,
        &parties,
        |q, (document, agency, role)| q.bind(*document).bind(*agency).bind(*role),
    )
    .await?;
    let subjects: Vec<(&str, &super::NewSubject)> = docs
        .iter()
        .filter_map(|doc| doc.subject.as_ref().map(|s| (doc.id.as_str(), s)))
        .collect();
    insert_many(
        conn,
        "INSERT INTO document_subjects (document_id, name, id_number) VALUES ",
        3,
        &subjects,
        |q, (document, s)| q.bind(*document).bind(&s.name).bind(&s.id_number),
    )
    .await?;
    insert_many(
        conn,
        "INSERT INTO signatures (document_id, keyid, alg, signature_input, signature, signature_base, \
         signer_agency, signer_certificate, verified_at) VALUES ",
        9,
        docs,
        |q, doc| {
            let sig = &doc.signature;
            q.bind(&doc.id)
                .bind(&sig.keyid)
                .bind(&sig.alg)
                .bind(&sig.signature_input)
                .bind(&sig.signature)
                .bind(&sig.signature_base)
                .bind(&sig.signer_agency)
                .bind(&sig.signer_certificate)
                .bind(sig.verified_at_ms)
        },
    )
    .await?;
    write_cases(conn, docs).await?;
    let attachments: Vec<(&str, usize, &super::NewAttachment)> = docs
        .iter()
        .flat_map(|doc| {
            doc.attachments
                .iter()
                .enumerate()
                .map(|(position, a)| (doc.id.as_str(), position, a))
        })
        .collect();
    insert_many(
        conn,
        "INSERT INTO document_attachments (document_id, position, sha256, kind, file_name, media_type, size) \
         VALUES ",
        7,
        &attachments,
        |q, (document, position, a)| {
            q.bind(*document)
                .bind(*position as i64)
                .bind(&a.sha256)
                .bind(&a.kind)
                .bind(&a.file_name)
                .bind(&a.media_type)
                .bind(a.size.map(|n| n as i64))
        },
    )
    .await?;
    let envelopes: Vec<(&str, &super::NewEnvelope)> = docs
        .iter()
        .filter_map(|doc| doc.envelope.as_ref().map(|e| (doc.id.as_str(), e)))
        .collect();
    insert_many(
        conn,
        "INSERT INTO document_envelopes (document_id, content_type, body_sha256, size) VALUES ",
        4,
        &envelopes,
        |q, (document, e)| {
            q.bind(*document)
                .bind(&e.content_type)
                .bind(&e.body_sha256)
                .bind(e.size as i64)
        },
    )
    .await?;
    let deliveries: Vec<(&NewDocument, &super::NewDelivery)> = docs
        .iter()
        .flat_map(|doc| doc.deliveries.iter().map(move |d| (*doc, d)))
        .collect();
    insert_many(
        conn,
        "INSERT INTO deliveries (id, document_id, agency_id, role, starts_clock, mode, state, attempts, \
         next_attempt_at, created_at, updated_at) VALUES ",
        11,
        &deliveries,
        |q, (doc, d)| {
            q.bind(&d.id)
                .bind(&doc.id)
                .bind(&d.agency_id)
                .bind(&d.role)
                .bind(i64::from(d.starts_clock))
                .bind(&d.mode)
                .bind("pending")
                .bind(0_i64)
                .bind(doc.received_at_ms)
                .bind(doc.received_at_ms)
                .bind(doc.received_at_ms)
        },
    )
    .await?;
    Ok(())
}

/// The case rows of documents whose case write is settled (opened, or moved
/// by [`move_case`]): new cases with their parties; the parties an answer
/// adds; each touched case's deadlines replaced by the document's. A case
/// moved twice in one group keeps the deadlines of the later document, as
/// two commits one after the other would.
async fn write_cases(conn: &mut AnyConnection, docs: &[&NewDocument]) -> Result<(), StoreError> {
    let opened: Vec<(&NewCase, i64)> = docs
        .iter()
        .filter_map(|doc| match &doc.case {
            Some(CaseWrite::Open(case)) => Some((case, doc.received_at_ms)),
            _ => None,
        })
        .collect();
    insert_many(
        conn,
        "INSERT INTO cases (id, flow, state, opened_by, corrections_agency, case_no, opened_at, updated_at) \
         VALUES ",
        8,
        &opened,
        |q, (case, at)| {
            q.bind(&case.id)
                .bind(&case.flow)
                .bind(&case.state)
                .bind(&case.opened_by)
                .bind(&case.corrections_agency)
                .bind(&case.case_no)
                .bind(*at)
                .bind(*at)
        },
    )
    .await?;
    let moved: Vec<&CaseUpdate> = docs
        .iter()
        .filter_map(|doc| match &doc.case {
            Some(CaseWrite::Advance(update)) => Some(update),
            _ => None,
        })
        .collect();
    let mut parties: Vec<(&str, &str)> = Vec::new();
    for (id, agencies) in opened
        .iter()
        .map(|(c, _)| (&c.id, &c.parties))
        .chain(moved.iter().map(|u| (&u.id, &u.parties)))
    {
        for agency in agencies {
            if !parties.contains(&(id, agency)) {
                parties.push((id, agency));
            }
        }
    }
    // An answer's parties may be parties of the case already.
    insert_many_then(
        conn,
        "INSERT INTO case_parties (case_id, agency_id) VALUES ",
        2,
        &parties,
        " ON CONFLICT DO NOTHING",
        |q, (case, agency)| q.bind(*case).bind(*agency),
    )
    .await?;
    let mut deadlines: Vec<(&str, &[NewDeadline])> = Vec::new();
    for (id, list) in opened
        .iter()
        .map(|(c, _)| (c.id.as_str(), c.deadlines.as_slice()))
        .chain(
            moved
                .iter()
                .map(|u| (u.id.as_str(), u.deadlines.as_slice())),
        )
    {
        match deadlines.iter_mut().find(|(case, _)| *case == id) {
            Some(entry) => entry.1 = list,
            None => deadlines.push((id, list)),
        }
    }
    for chunk in moved.chunks(INSERT_CHUNK) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "DELETE FROM deadlines WHERE case_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = many(&*conn, &sql, chunk.len());
        for update in chunk {
            query = query.bind(&update.id);
        }
        query.execute(&mut *conn).await?;
    }
    let rows: Vec<(&str, usize, &NewDeadline)> = deadlines
        .iter()
        .flat_map(|(case, list)| list.iter().enumerate().map(move |(seq, d)| (*case, seq, d)))
        .collect();
    insert_many(
        conn,
        "INSERT INTO deadlines (case_id, seq, step, period, starts_at, due_at, met_at, closed_at, status, note, \
         awaiting_document) VALUES ",
        11,
        &rows,
        |q, (case, seq, d)| {
            q.bind(*case)
                .bind(*seq as i64)
                .bind(&d.step)
                .bind(&d.period)
                .bind(d.starts_at_ms)
                .bind(d.due_at_ms)
                .bind(d.met_at_ms)
                .bind(d.closed_at_ms)
                .bind(&d.status)
                .bind(&d.note)
                .bind(&d.awaiting_document)
        },
    )
    .await?;
    Ok(())
}
