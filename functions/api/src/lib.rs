//! The `api` function: an `axum` router over the backup-bridge library, run by `lambda_http`
//! behind an API Gateway HTTP API, or as a plain HTTP server on 127.0.0.1 by `api-local`.
//!
//! The OpenAPI document is generated from the handlers' types, so it cannot drift from them.

pub mod error;
pub mod lang;
pub mod routes;
pub mod state;

use axum::routing::get;
use axum::{Json, Router, middleware};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "backup-bridge API",
        description = "Health, configuration, Aliyun backups, Amazon RDS snapshots and exports, and the copy status between the clouds. Errors are `{\"code\", \"message\"}` with the message in Simplified Chinese, or in English when `Accept-Language` prefers `en`."
    ),
    tags(
        (name = "health"), (name = "config"), (name = "aliyun"), (name = "aws"), (name = "status")
    )
)]
struct ApiDoc;

fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::health))
        .routes(routes!(routes::config::config))
        .routes(routes!(routes::aliyun::list_backups))
        .routes(routes!(routes::aliyun::start_pull))
        .routes(routes!(routes::aws::list_snapshots))
        .routes(routes!(routes::aws::start_export))
        .routes(routes!(routes::aws::list_exports))
        .routes(routes!(routes::aws::export))
        .routes(routes!(routes::status::status))
}

/// Returns the OpenAPI 3.1 document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes().split_for_parts().1
}

/// Builds the router over `state`, with `/openapi.json`, `/docs` and the error middleware.
pub fn router(state: AppState) -> Router {
    let (router, openapi) = documented_routes().split_for_parts();
    let page = routes::docs::page(&openapi);
    router
        .route("/openapi.json", get(move || async move { Json(openapi) }))
        .route("/docs", get(move || async move { page }))
        .layer(middleware::from_fn(error::localize_errors))
        .with_state(state)
}
