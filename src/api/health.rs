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
    /// The service and its database are up.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// The database does not answer.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

#[derive(Default)]
pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Check health
    ///
    /// Answers 200 when the database answers and 503 otherwise. Needs no key;
    /// meant for load balancers and orchestrators.
    #[oai(path = "/healthz", method = "get", operation_id = "get_health")]
    async fn health(&self, _public: NoAuth, db: Data<&DatabaseConnection>) -> HealthResponse {
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
