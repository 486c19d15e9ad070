//! The one error shape of the API, `{ "code": "...", "message": "..." }`, with a stable code and
//! a message in Chinese or English. Cloud errors keep the cloud's code; no `Debug` output of an
//! internal type ever reaches a reply.

use axum::Json;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::lang::Lang;

/// The body of every error reply.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code for scripts, such as `invalid_parameter` or `aliyun_error`.
    pub code: String,
    /// A sentence for people, in Chinese unless `Accept-Language` prefers English.
    pub message: String,
    /// The cloud's own error code, when a cloud API failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_code: Option<String>,
}

/// An error reply before its language is chosen.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub zh: String,
    pub en: String,
    pub cloud_code: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, zh: String, en: String) -> Self {
        Self {
            status,
            code,
            zh,
            en,
            cloud_code: None,
        }
    }

    /// 400 for a request value that cannot be used; both messages name `field`.
    pub fn invalid(field: &str, zh_reason: &str, en_reason: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("参数 {field} 无效：{zh_reason}"),
            format!("invalid parameter {field}: {en_reason}"),
        )
    }

    /// 404 for an unknown resource, such as `instance rm-x`.
    pub fn not_found(code: &'static str, zh_what: &str, en_what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code,
            format!("未找到{zh_what}"),
            format!("{en_what} not found"),
        )
    }

    /// 502 for a failed cloud API call, keeping the cloud's code. `detail` is the error's
    /// `Display` text, which names the action and the resource but never a secret.
    pub fn cloud(code: &'static str, cloud_code: Option<&str>, detail: &str) -> Self {
        let mut error = Self::new(
            StatusCode::BAD_GATEWAY,
            code,
            format!("云服务调用失败：{detail}"),
            format!("a cloud API call failed: {detail}"),
        );
        error.cloud_code = cloud_code.map(str::to_string);
        error
    }

    /// Returns the body in `lang`.
    pub fn body(&self, lang: Lang) -> ErrorBody {
        ErrorBody {
            code: self.code.to_string(),
            message: match lang {
                Lang::Zh => self.zh.clone(),
                Lang::En => self.en.clone(),
            },
            cloud_code: self.cloud_code.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    /// Writes the Chinese body and keeps the error in the response's extensions, so that
    /// [`localize_errors`] can rewrite it in the request's language.
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body(Lang::Zh))).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Rewrites error replies in the language of the request, and gives the replies that axum
/// builds itself (unknown route, wrong method, unreadable body) the same JSON shape.
pub async fn localize_errors(request: Request, next: Next) -> Response {
    let lang = Lang::from_headers(request.headers());
    let response = next.run(request).await;
    if let Some(error) = response.extensions().get::<ApiError>() {
        if lang == Lang::Zh {
            return response;
        }
        let error = error.clone();
        return (error.status, Json(error.body(lang))).into_response();
    }
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::new(
            status,
            "route_not_found",
            "没有这个路径".into(),
            "no route matches this path".into(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "该路径不支持此 HTTP 方法".into(),
            "this path does not accept this HTTP method".into(),
        ),
        _ if status.is_client_error() => ApiError::new(
            status,
            "bad_request",
            "请求无效".into(),
            "the request is invalid".into(),
        ),
        _ => ApiError::new(
            status,
            "internal_error",
            "内部错误".into(),
            "internal error".into(),
        ),
    };
    let mut reply = (status, Json(error.body(lang))).into_response();
    if let Some(allow) = response.headers().get(http::header::ALLOW) {
        reply.headers_mut().insert(http::header::ALLOW, allow.clone());
    }
    reply
}
