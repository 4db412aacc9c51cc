//! E-mailing survey invitations: a background sender reads the queue
//! (`survey_email_queue`, in the database, so it survives restarts), sends
//! each message through SMTP with `lettre`, and records the attempt on the
//! invitation (`sent_at`, `email_attempts`, `email_last_error`).
//!
//! - Never on the request path: creating an invitation only queues it, and
//!   wakes the sender.
//! - Retries with back-off ([`BACKOFF`]); a permanent refusal (5xx) or the
//!   last attempt gives up, keeping the error on the invitation.
//! - Several instances share the queue: a row is claimed for [`LEASE`] by
//!   a conditional update that only one instance can win, so no two send
//!   the same invitation. Only a crash between the server accepting the
//!   message and the row being deleted sends it again, after the lease.
//! - A queued message whose invitation was answered, revoked or expired,
//!   or whose candidate has no address any more (erased), is dropped.
//! - No address, token or error text reaches the log: ids only.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use entity::{candidate, survey_email_queue, survey_invitation};
use lettre::{
    message::{header::ContentType, Mailbox, MultiPart, SinglePart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ColumnTrait, DatabaseConnection, EntityTrait,
};
use tokio::sync::Notify;

use crate::config::SmtpSettings;
use crate::db::store::Executor;
use crate::domain::{
    surveys::{
        answers::{self, SurveyView},
        wording::Wording,
    },
    DomainError, DomainResult,
};

/// How long a claimed message stays with the instance sending it.
const LEASE: Duration = Duration::minutes(5);
/// The longest one SMTP conversation may take (well under the lease).
const SMTP_TIMEOUT: StdDuration = StdDuration::from_secs(60);
/// How long the sender sleeps when nothing wakes it: it also picks up
/// retries and other instances' invitations.
const POLL: StdDuration = StdDuration::from_secs(5);
/// The wait before each retry, after the first, second, ... failure; after
/// the last, the invitation is given up.
const BACKOFF: [Duration; 5] = [
    Duration::seconds(30),
    Duration::minutes(2),
    Duration::minutes(10),
    Duration::hours(1),
    Duration::hours(6),
];
/// The longest error text kept on an invitation.
const ERROR_MAX: usize = 300;

/// What sends invitation e-mails.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// What survey links start with.
    public_url: String,
    /// Wakes the sender when an invitation is queued.
    wake: Arc<Notify>,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings, public_url: &str) -> anyhow::Result<Self> {
        // The URL may carry a password: the error says what is wrong
        // without repeating it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .map_err(|err| anyhow::anyhow!("SMTP_URL is not a valid SMTP URL: {err}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = settings
            .from
            .parse()
            .map_err(|err| anyhow::anyhow!("SMTP_FROM is not a valid mailbox: {err}"))?;
        Ok(Mailer {
            transport,
            from,
            public_url: public_url.to_owned(),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Tells the sender that an invitation was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The sender's loop: sends what is due, then sleeps until woken or
    /// [`POLL`] passed. Errors of the database are logged and retried.
    pub async fn run(self, db: DatabaseConnection) {
        loop {
            match self.send_due(&db).await {
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "survey e-mail sender: will retry"),
            }
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
        }
    }

    /// Sends every queued message that is due, one claim at a time; how
    /// many were sent.
    pub async fn send_due(&self, db: &DatabaseConnection) -> DomainResult<usize> {
        let mut sent = 0;
        while let Some(queued) = claim(db).await? {
            if self.send_one(db, queued).await? {
                sent += 1;
            }
        }
        Ok(sent)
    }

    async fn send_one(&self, db: &DatabaseConnection, queued: Claimed) -> DomainResult<bool> {
        let view = answers::view(db, &queued.token).await?;
        let email = match &view {
            Some(view) => candidate::Entity::find_by_id(view.candidate_id)
                .one(db)
                .await?
                .and_then(|candidate| candidate.email),
            None => None,
        };
        let (Some(view), Some(email)) = (view, email) else {
            drop_queued(db, &queued).await?;
            return Ok(false);
        };
        if !view.status.is_open() {
            drop_queued(db, &queued).await?;
            return Ok(false);
        }
        let expires_at = survey_invitation::Entity::find_by_id(view.invitation_id)
            .one(db)
            .await?
            .map(|invitation| invitation.expires_at)
            .ok_or_else(|| DomainError::internal("a queued invitation is missing"))?;
        let message = match self.message(&view, &queued.token, &email, expires_at) {
            Ok(message) => message,
            Err(reason) => {
                record_failure(db, &queued, reason, true).await?;
                return Ok(false);
            }
        };
        match self.transport.send(message).await {
            Ok(_) => {
                record_sent(db, &queued).await?;
                tracing::info!(
                    invitation_id = queued.invitation_id,
                    "survey invitation e-mailed"
                );
                Ok(true)
            }
            Err(err) => {
                let permanent = err.is_permanent();
                tracing::warn!(
                    invitation_id = queued.invitation_id,
                    permanent,
                    "survey invitation e-mail failed"
                );
                record_failure(db, &queued, truncate(&err.to_string()), permanent).await?;
                Ok(false)
            }
        }
    }

    /// The invitation e-mail, in the invitation's language: the question,
    /// the eleven scores as links (each opens the page with it chosen;
    /// opening sends nothing), and the plain link.
    fn message(
        &self,
        view: &SurveyView,
        token: &str,
        email: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Message, String> {
        let words = Wording::of(view.locale);
        let url = format!("{}/s/{token}", self.public_url);
        let to: Mailbox = email
            .parse()
            .map_err(|_| "the candidate's e-mail address is not deliverable".to_owned())?;
        let question = words.question_about(&view.employer);
        let expires = expires_at.format("%Y-%m-%d");
        let mut text = format!(
            "{}\n\n{question}\n{}{}\n\n{}\n",
            words.mail_greeting, words.about, view.touchpoint, words.mail_pick
        );
        for score in 0..=10 {
            text.push_str(&format!("  {score}: {url}?score={score}\n"));
        }
        text.push_str(&format!(
            "\n{} {url}\n{} {expires}.\n",
            words.mail_link, words.mail_expires
        ));
        let links: String = (0..=10)
            .map(|score| {
                format!(
                    "<a href=\"{url}?score={score}\" style=\"display:inline-block;min-width:2em;\
                     padding:.5em;margin:.1em;border:1px solid #555;color:#00e;text-align:center\">\
                     {score}</a>"
                )
            })
            .collect();
        let html = maud::html! {
            p { (words.mail_greeting) }
            p { strong { (question) } }
            p { (words.about) (view.touchpoint) }
            p { (words.mail_pick) }
            p { (maud::PreEscaped(links)) }
            p { (words.mail_link) " " a href=(url) { (url) } }
            p { (words.mail_expires) " " (expires) "." }
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("{}{}", words.mail_subject, view.employer))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(
                        format!(
                            "<!DOCTYPE html><html lang=\"{}\"><body>{}</body></html>",
                            words.lang,
                            html.into_string()
                        ),
                    )),
            )
            .map_err(|err| format!("the message could not be built: {err}"))
    }
}

/// A claimed row of the queue.
struct Claimed {
    invitation_id: i64,
    token: String,
    /// The claim's end: only the holder of this value may finish the row.
    claimed_until: DateTime<Utc>,
}

/// Claims the message due first, if any: a conditional update that only
/// one instance wins (on PostgreSQL the second re-reads the row after the
/// first commits, and finds it claimed).
async fn claim(db: &DatabaseConnection) -> DomainResult<Option<Claimed>> {
    use survey_email_queue::Column as Q;
    let now = crate::domain::now();
    let until = now + LEASE;
    let free = || {
        Expr::col(Q::ClaimedUntil)
            .is_null()
            .or(Expr::col(Q::ClaimedUntil).lte(now))
    };
    let due = Query::select()
        .column(Q::InvitationId)
        .from(survey_email_queue::Entity)
        .and_where(Expr::col(Q::NextAttemptAt).lte(now))
        .and_where(free())
        .order_by(Q::NextAttemptAt, sea_orm::Order::Asc)
        .limit(1)
        .to_owned();
    let update = Query::update()
        .table(survey_email_queue::Entity)
        .value(Q::ClaimedUntil, until)
        .and_where(Expr::col(Q::InvitationId).in_subquery(due))
        .and_where(free())
        .returning(Query::returning().columns([Q::InvitationId, Q::Token]))
        .to_owned();
    let rows = db.query(&update).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Claimed {
        invitation_id: row.get(Q::InvitationId)?,
        token: row.get(Q::Token)?,
        claimed_until: until,
    }))
}

/// Deletes the claimed row, if this claim still holds it.
fn delete_claimed(queued: &Claimed) -> sea_orm::sea_query::DeleteStatement {
    Query::delete()
        .from_table(survey_email_queue::Entity)
        .and_where(survey_email_queue::Column::InvitationId.eq(queued.invitation_id))
        .and_where(survey_email_queue::Column::ClaimedUntil.eq(queued.claimed_until))
        .to_owned()
}

async fn drop_queued(db: &DatabaseConnection, queued: &Claimed) -> DomainResult<()> {
    db.execute(&delete_claimed(queued)).await?;
    Ok(())
}

async fn record_sent(db: &DatabaseConnection, queued: &Claimed) -> DomainResult<()> {
    let txn = crate::domain::begin_write(db).await?;
    let now = crate::domain::now();
    let update = Query::update()
        .table(survey_invitation::Entity)
        .value(
            survey_invitation::Column::SentAt,
            sea_orm::sea_query::Func::coalesce([
                Expr::col(survey_invitation::Column::SentAt),
                Expr::val(now),
            ]),
        )
        .value(
            survey_invitation::Column::EmailAttempts,
            Expr::col(survey_invitation::Column::EmailAttempts).add(1),
        )
        .value(
            survey_invitation::Column::EmailLastError,
            Option::<String>::None,
        )
        .and_where(survey_invitation::Column::Id.eq(queued.invitation_id))
        .to_owned();
    txn.execute(&update).await?;
    txn.execute(&delete_claimed(queued)).await?;
    txn.commit().await?;
    Ok(())
}

/// Records a failed attempt; schedules the next one, or gives up when the
/// failure is permanent or the attempts are spent.
async fn record_failure(
    db: &DatabaseConnection,
    queued: &Claimed,
    error: String,
    permanent: bool,
) -> DomainResult<()> {
    let txn = crate::domain::begin_write(db).await?;
    let update = Query::update()
        .table(survey_invitation::Entity)
        .value(
            survey_invitation::Column::EmailAttempts,
            Expr::col(survey_invitation::Column::EmailAttempts).add(1),
        )
        .value(survey_invitation::Column::EmailLastError, error)
        .and_where(survey_invitation::Column::Id.eq(queued.invitation_id))
        .returning_col(survey_invitation::Column::EmailAttempts)
        .to_owned();
    let attempts: i32 = match txn.query(&update).await?.first() {
        Some(row) => row.get(survey_invitation::Column::EmailAttempts)?,
        None => 0,
    };
    let retry = usize::try_from(attempts)
        .ok()
        .and_then(|attempts| attempts.checked_sub(1))
        .and_then(|index| BACKOFF.get(index));
    match (permanent, retry) {
        (false, Some(wait)) => {
            let reschedule = Query::update()
                .table(survey_email_queue::Entity)
                .value(
                    survey_email_queue::Column::NextAttemptAt,
                    crate::domain::now() + *wait,
                )
                .value(
                    survey_email_queue::Column::ClaimedUntil,
                    Option::<DateTime<Utc>>::None,
                )
                .and_where(survey_email_queue::Column::InvitationId.eq(queued.invitation_id))
                .and_where(survey_email_queue::Column::ClaimedUntil.eq(queued.claimed_until))
                .to_owned();
            txn.execute(&reschedule).await?;
        }
        _ => {
            txn.execute(&delete_claimed(queued)).await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

fn truncate(error: &str) -> String {
    error.chars().take(ERROR_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_and_ends() {
        assert!(BACKOFF.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(BACKOFF.iter().all(|wait| *wait < Duration::hours(24)));
        assert!(SMTP_TIMEOUT.as_secs() * 2 < LEASE.num_seconds() as u64);
    }
}
