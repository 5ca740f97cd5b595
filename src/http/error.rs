//! The one place where errors become HTTP status codes and Consul's exact texts.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::server;

/// An error answered to an HTTP client: a status and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    /// 400 with a message.
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: msg.into() }
    }
    /// 404 with a message.
    pub fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: msg.into() }
    }
    /// 413 with a message.
    pub fn too_large(msg: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::PAYLOAD_TOO_LARGE, message: msg.into() }
    }
    /// 500 with a message (Consul reports most server-side refusals this way).
    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: msg.into() }
    }
    /// 405.
    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("method {method} not allowed on {path}"),
        }
    }
    /// A JSON body that could not be decoded.
    pub fn decode(e: impl std::fmt::Display) -> ApiError {
        ApiError::bad_request(format!("Request decode failed: {e}"))
    }
}

impl From<server::Error> for ApiError {
    fn from(e: server::Error) -> ApiError {
        let status = match &e {
            server::Error::NoLeader | server::Error::Internal(_) | server::Error::NoPathToDatacenter(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            server::Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            server::Error::NotFound(_) => StatusCode::NOT_FOUND,
            server::Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        ApiError { status, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let close = self.status == StatusCode::PAYLOAD_TOO_LARGE;
        let mut r = (self.status, self.message).into_response();
        if close {
            // The rest of the body may be unread: tell the client this connection is done.
            r.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        }
        r.headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
        r
    }
}

/// Handler results.
pub type ApiResult = Result<Response, ApiError>;
