use super::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok_without_a_key() {
    let app = spawn_app().await;

    let reply = app
        .request(reqwest::Method::GET, "/healthz", None, None)
        .await;

    assert_eq!(reply.assert_status(200)["status"], "ok");
}

#[tokio::test]
async fn healthz_answers_503_when_the_database_is_gone() {
    let app = spawn_app().await;

    app.db.clone().close().await.unwrap();
    let reply = app
        .request(reqwest::Method::GET, "/healthz", None, None)
        .await;

    reply.assert_error(503, "unavailable", None);
}

#[tokio::test]
async fn docs_ui_and_document_are_served() {
    let app = spawn_app().await;

    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    let document = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(docs.status(), 200);
    let docs = docs.text().await.unwrap();
    assert!(docs.contains("swagger"));
    // The page shows the finished document, as /openapi.json does.
    let finished = touchpoint_tracker::api::openapi_document();
    assert!(
        docs.contains(finished.trim_end()),
        "/docs shows another document"
    );
    assert_eq!(document.status(), 200);
    let served = document.text().await.unwrap();
    // The served document is the committed one (its trailing newline aside).
    assert_eq!(
        served + "\n",
        touchpoint_tracker::api::openapi_document(),
        "/openapi.json differs from `touchpoint-tracker openapi`"
    );
}
