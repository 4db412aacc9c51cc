//! Bearer-token authentication, declared as the document's security scheme.

use poem::Request;
use poem_openapi::{auth::Bearer, SecurityScheme};
use sea_orm::DatabaseConnection;

use super::error::ApiError;
use crate::domain::{auth::Principal, keys};

/// An API key: `Authorization: Bearer <token>`. Keys belong to one
/// organization and one role (`admin`, `recruiter` or `reporter`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "authenticate")]
pub struct ApiKeyAuth(pub Principal);

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let db = req
        .data::<DatabaseConnection>()
        .expect("the database connection is attached to every route");
    keys::authenticate(db, &bearer.token)
        .await
        .map_err(|err| ApiError::from(err).into())
}
