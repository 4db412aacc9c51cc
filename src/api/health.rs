use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use super::{
    error::{ErrorBody, ErrorCode},
    ApiTags, NoAuth,
};

/// The service's health.
#[derive(Object)]
pub struct Health {
    /// `ok` when the database answers.
    #[oai(validator(max_length = 16))]
    pub status: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The service, its background workers and its database are up.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// The database does not answer, or a background worker the service
    /// relies on (the encounter writer) has stopped.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// A long-running worker the service relies on, and how to tell whether it
/// still runs.
pub struct Worker {
    /// Named in the 503's message and the log.
    pub name: &'static str,
    pub running: Box<dyn Fn() -> bool + Send + Sync>,
}

/// The background workers `/healthz` watches: if one stops (it panicked,
/// or ended), the instance cannot do its work, and an orchestrator should
/// replace it.
#[derive(Clone, Default)]
pub struct Workers(Arc<Vec<Worker>>);

impl Workers {
    pub fn new(workers: Vec<Worker>) -> Self {
        Workers(Arc::new(workers))
    }

    /// The first worker that has stopped, if any.
    pub fn stopped(&self) -> Option<&'static str> {
        self.0
            .iter()
            .find(|worker| !(worker.running)())
            .map(|worker| worker.name)
    }
}

#[derive(Default)]
pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Check health
    ///
    /// Answers 200 when the database answers and the background workers
    /// run, and 503 otherwise. Needs no key; meant for load balancers and
    /// orchestrators.
    #[oai(path = "/healthz", method = "get", operation_id = "get_health")]
    async fn health(
        &self,
        _public: NoAuth,
        db: Data<&DatabaseConnection>,
        workers: Data<&Workers>,
    ) -> HealthResponse {
        if let Some(worker) = workers.stopped() {
            tracing::warn!(worker, "health check: a background worker has stopped");
            return HealthResponse::Unavailable(Json(ErrorBody::new(
                ErrorCode::Unavailable,
                format!("the {worker} has stopped"),
                None,
            )));
        }
        match db.ping().await {
            Ok(()) => HealthResponse::Ok(Json(Health {
                status: "ok".to_owned(),
            })),
            Err(err) => {
                tracing::warn!(error = %err, "health check: database does not answer");
                HealthResponse::Unavailable(Json(ErrorBody::new(
                    ErrorCode::Unavailable,
                    "the database does not answer",
                    None,
                )))
            }
        }
    }
}
