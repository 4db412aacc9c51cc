//! The survey pages candidates answer on, at `/s/{token}`: no key, no
//! account, server-rendered HTML (maud) that works without JavaScript, on a
//! phone, with a keyboard or a screen reader.
//!
//! - `GET /s/{token}`: the question, eleven labelled choices 0-10, an
//!   optional comment and the privacy notice; `?score=N` pre-selects a
//!   choice. A GET never records anything: the page's script reports the
//!   first time a browser showed it (`POST /s/{token}/opened`), so link
//!   scanners in mail systems do not count as opens.
//! - `POST /s/{token}`: records the answer once and thanks the candidate,
//!   in words for promoters, passives and detractors. A second answer gets
//!   409, an expired or revoked link 410, an unknown one 404; none says
//!   anything about any other link.
//! - A strict Content-Security-Policy (only this service's own stylesheet
//!   and script), no third-party resource, no referrer (the link is a
//!   secret), nothing cached, and nothing of the candidate on the page.
//! - Every path with a token is rate-limited per client address
//!   (`SURVEY_RATE_PER_MINUTE`); the request log writes `/s/{token}`, never
//!   the token.

use std::net::IpAddr;

use entity::enums::SurveyLocale;
use maud::{html, Markup, DOCTYPE};
use poem::{
    handler,
    http::{header, HeaderValue, StatusCode},
    web::{Data, Path, Query},
    Body, IntoResponse, Request, Response, Route,
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::rate_limit::{client_bucket, RateLimiter};
use crate::domain::{
    analytics::perception::{class_of, ScoreClass},
    surveys::{
        answers::{self, Answer, Refusal, SurveyView, COMMENT_MAX},
        invitations::Status,
        wording::Wording,
    },
    DomainError,
};

/// The survey pages' allowance per client address.
pub struct SurveyPageLimiter(pub RateLimiter<IpAddr>);

/// The largest answer body: a score and a 1000-character comment, encoded.
const FORM_MAX_BYTES: usize = 16 * 1024;

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
base-uri 'none'";

const CSS: &str = include_str!("survey_assets/survey.css");
const JS: &str = include_str!("survey_assets/survey.js");

/// Adds the survey routes to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/s/assets/survey.css", poem::get(stylesheet))
        .at("/s/assets/survey.js", poem::get(script))
        .at("/s/:token", poem::get(show).post(answer))
        .at("/s/:token/opened", poem::post(record_opened))
}

/// What the request log writes for a path: survey paths without their
/// token.
pub fn loggable_path(path: &str) -> &str {
    match path.strip_prefix("/s/") {
        Some(rest) if rest.starts_with("assets/") => path,
        Some(rest) if rest.ends_with("/opened") => "/s/{token}/opened",
        Some(_) => "/s/{token}",
        None => path,
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    score: Option<String>,
}

#[handler]
async fn show(
    req: &Request,
    db: Data<&DatabaseConnection>,
    Path(token): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    if let Some(refused) = rate_limited(req) {
        return refused;
    }
    match answers::view(*db, &token).await {
        Ok(Some(view)) if view.status.is_open() => {
            // An out-of-range or malformed ?score= pre-selects nothing.
            let chosen = query
                .score
                .and_then(|s| s.parse::<i32>().ok())
                .filter(|s| (0..=10).contains(s));
            page(StatusCode::OK, survey_form(&view, &token, chosen, None))
        }
        Ok(Some(view)) => closed_page(&view),
        Ok(None) => unknown_page(req),
        Err(err) => failure_page(req, err),
    }
}

#[handler]
async fn record_opened(
    req: &Request,
    db: Data<&DatabaseConnection>,
    Path(token): Path<String>,
) -> Response {
    if let Some(refused) = rate_limited(req) {
        return refused;
    }
    // The same answer whether the link exists or not.
    if let Err(err) = answers::mark_opened(*db, &token).await {
        tracing::warn!(error = %err, "recording a survey's opening failed");
    }
    with_headers(StatusCode::NO_CONTENT.into_response())
}

#[handler]
async fn answer(
    req: &Request,
    body: Body,
    db: Data<&DatabaseConnection>,
    Path(token): Path<String>,
) -> Response {
    if let Some(refused) = rate_limited(req) {
        return refused;
    }
    let form = match read_form(req, body).await {
        Ok(form) => form,
        Err(status) => return message_page(status, locale_of_request(req), Message::BadForm),
    };
    let view = match answers::view(*db, &token).await {
        Ok(Some(view)) => view,
        Ok(None) => return unknown_page(req),
        Err(err) => return failure_page(req, err),
    };
    if !view.status.is_open() {
        return closed_page(&view);
    }
    let words = Wording::of(view.locale);
    let score = match form.score {
        Some(score) => score,
        None => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                survey_form(&view, &token, None, Some(words.choose_score)),
            )
        }
    };
    let answer = Answer {
        score,
        comment: form.comment,
    };
    match answers::submit(*db, &token, view, answer).await {
        Ok(Ok(view)) => page(StatusCode::OK, thanks(&view, score)),
        Ok(Err(Refusal::Unknown)) => unknown_page(req),
        Ok(Err(Refusal::Closed(view))) => closed_page(&view),
        Ok(Err(Refusal::Invalid(view, err))) => {
            // The answer's own rules (`answers::submit`), shown by the field.
            let words = Wording::of(view.locale);
            let (chosen, message) = match err {
                DomainError::Invalid { field, .. } if field == "comment" => {
                    (Some(score), words.comment_too_long)
                }
                _ => (None, words.choose_score),
            };
            page(
                StatusCode::UNPROCESSABLE_ENTITY,
                survey_form(&view, &token, chosen, Some(message)),
            )
        }
        Err(err) => failure_page(req, err),
    }
}

#[handler]
fn stylesheet() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

#[handler]
fn script() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::builder()
        .content_type(content_type)
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(body);
    security_headers(&mut response);
    response
}

/// A submitted form: the score (0-10; `None` when missing, repeated or not
/// a whole number in range) and the comment (blank is none).
struct AnswerForm {
    score: Option<i32>,
    comment: Option<String>,
}

async fn read_form(req: &Request, body: Body) -> Result<AnswerForm, StatusCode> {
    let is_form = req
        .header(header::CONTENT_TYPE)
        .and_then(|value| value.parse::<mime::Mime>().ok())
        .is_some_and(|mime| mime.essence_str() == "application/x-www-form-urlencoded");
    if !is_form {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let bytes = body
        .into_bytes_limit(FORM_MAX_BYTES)
        .await
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        })?;
    let mut scores = Vec::new();
    let mut comments = Vec::new();
    for (key, value) in url::form_urlencoded::parse(&bytes) {
        match key.as_ref() {
            "score" => scores.push(value.into_owned()),
            "comment" => comments.push(value.into_owned()),
            _ => {}
        }
    }
    let score = match scores.as_slice() {
        [one] => one
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|s| (0..=10).contains(s)),
        _ => None,
    };
    if comments.len() > 1 {
        return Err(StatusCode::BAD_REQUEST);
    }
    let comment = comments
        .pop()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    Ok(AnswerForm { score, comment })
}

/// 429 with `Retry-After` when the client address used up its allowance.
fn rate_limited(req: &Request) -> Option<Response> {
    let limiter = req.data::<std::sync::Arc<SurveyPageLimiter>>()?;
    let client = req.remote_addr().as_socket_addr()?.ip();
    let wait = limiter.0.check(client_bucket(client)).err()?;
    let mut response = message_page(
        StatusCode::TOO_MANY_REQUESTS,
        locale_of_request(req),
        Message::TooMany,
    );
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Some(response)
}

/// The language of a page about no invitation: the browser's first choice
/// between Vietnamese and English.
fn locale_of_request(req: &Request) -> SurveyLocale {
    let accept = req
        .header(header::ACCEPT_LANGUAGE)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let vi = accept.find("vi");
    let en = accept.find("en");
    match (vi, en) {
        (Some(vi), Some(en)) if vi < en => SurveyLocale::Vi,
        (Some(_), None) => SurveyLocale::Vi,
        _ => SurveyLocale::En,
    }
}

fn security_headers(response: &mut Response) {
    super::page_headers::secure(response, CSP);
}

fn with_headers(mut response: Response) -> Response {
    security_headers(&mut response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn page(status: StatusCode, markup: Markup) -> Response {
    with_headers(
        Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .body(markup.into_string()),
    )
}

/// The frame of every page.
fn document(words: &Wording, title: &str, employer: Option<&str>, content: Markup) -> Markup {
    let full_title = match employer {
        Some(employer) => format!("{title} · {employer}"),
        None => title.to_owned(),
    };
    html! {
        (DOCTYPE)
        html lang=(words.lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                title { (full_title) }
                link rel="stylesheet" href="/s/assets/survey.css";
                script src="/s/assets/survey.js" defer {}
            }
            body {
                main {
                    @if let Some(employer) = employer {
                        p.employer { (employer) }
                    }
                    (content)
                }
            }
        }
    }
}

fn survey_form(view: &SurveyView, token: &str, chosen: Option<i32>, error: Option<&str>) -> Markup {
    let words = Wording::of(view.locale);
    let action = format!("/s/{token}");
    let opened = format!("/s/{token}/opened");
    let content = html! {
        h1 { (words.title) }
        p.about { (words.about) (view.touchpoint) }
        form method="post" action=(action) data-opened=(opened) {
            @if let Some(error) = error {
                p #error .error role="alert" { (error) }
            }
            fieldset aria-describedby=[error.map(|_| "error")] {
                legend { (words.question_about(&view.employer)) }
                div.scale {
                    @for score in 0..=10 {
                        @let id = format!("score-{score}");
                        div.choice {
                            input type="radio" name="score" id=(id) value=(score)
                                required checked[chosen == Some(score)];
                            label for=(id) {
                                (score)
                                @if score == 0 {
                                    span.sr-only { " – " (words.not_likely) }
                                }
                                @if score == 10 {
                                    span.sr-only { " – " (words.very_likely) }
                                }
                            }
                        }
                    }
                }
                p.ends aria-hidden="true" {
                    span { "0 = " (words.not_likely) }
                    span { "10 = " (words.very_likely) }
                }
            }
            label.comment for="comment" { (words.comment_label) }
            p #comment-hint .hint { (words.comment_hint) }
            textarea #comment name="comment" rows="4" maxlength=(COMMENT_MAX)
                aria-describedby="comment-hint" {}
            button type="submit" { (words.submit) }
        }
        p.notice {
            @match view.mode {
                entity::enums::SurveyMode::Confidential => (words.confidential),
                entity::enums::SurveyMode::Anonymous => (words.anonymous),
            }
        }
        (privacy(view, words))
    };
    document(words, words.title, Some(&view.employer), content)
}

fn privacy(view: &SurveyView, words: &Wording) -> Markup {
    html! {
        @if let Some(url) = &view.privacy_notice_url {
            p.privacy {
                (words.privacy) " "
                a href=(url) rel="noreferrer" { (words.privacy_link) }
            }
        }
    }
}

fn thanks(view: &SurveyView, score: i32) -> Markup {
    let words = Wording::of(view.locale);
    let body = match class_of(score) {
        ScoreClass::Promoter => words.thanks_promoter,
        ScoreClass::Passive => words.thanks_passive,
        ScoreClass::Detractor => words.thanks_detractor,
    };
    let content = html! {
        h1 { (words.thanks_title) }
        p { (body) }
        (privacy(view, words))
    };
    document(words, words.thanks_title, Some(&view.employer), content)
}

/// The page of a link that takes no answer: 409 once answered, 410 when
/// expired or revoked.
fn closed_page(view: &SurveyView) -> Response {
    let words = Wording::of(view.locale);
    let (status, title, body) = match view.status {
        Status::Answered => (
            StatusCode::CONFLICT,
            words.answered_title,
            words.answered_body,
        ),
        _ => (StatusCode::GONE, words.closed_title, words.closed_body),
    };
    let content = html! {
        h1 { (title) }
        p { (body) }
    };
    page(
        status,
        document(words, title, Some(&view.employer), content),
    )
}

fn unknown_page(req: &Request) -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        locale_of_request(req),
        Message::Unknown,
    )
}

/// A fault or an outage: logged, and a page that says to try later.
fn failure_page(req: &Request, err: DomainError) -> Response {
    let status = match &err {
        DomainError::Unavailable(message) => {
            tracing::error!(error = %message, "database unavailable");
            StatusCode::SERVICE_UNAVAILABLE
        }
        other => {
            tracing::error!(error = %other, "survey page failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    message_page(status, locale_of_request(req), Message::Failure)
}

enum Message {
    Unknown,
    TooMany,
    BadForm,
    Failure,
}

fn message_page(status: StatusCode, locale: SurveyLocale, message: Message) -> Response {
    let words = Wording::of(locale);
    let (title, body) = match message {
        Message::Unknown => (words.unknown_title, words.unknown_body),
        Message::TooMany => (words.too_many_title, words.too_many_body),
        Message::BadForm => (words.bad_form_title, words.bad_form_body),
        Message::Failure => (words.failure_title, words.failure_body),
    };
    let content = html! {
        h1 { (title) }
        p { (body) }
    };
    page(status, document(words, title, None, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_never_sees_a_token() {
        assert_eq!(loggable_path("/s/abcDEF123"), "/s/{token}");
        assert_eq!(loggable_path("/s/abcDEF123/opened"), "/s/{token}/opened");
        assert_eq!(
            loggable_path("/s/assets/survey.css"),
            "/s/assets/survey.css"
        );
        assert_eq!(loggable_path("/api/v1/candidates"), "/api/v1/candidates");
    }
}
