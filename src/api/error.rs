//! Every API error is JSON with a stable code, a message a developer understands, and the field
//! path when one input was wrong.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::queue::{CodeError, Job, QueueError, SubmitError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// The job a 409 is about (the account's live job).
    pub job: Option<Box<Job>>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<&'a Job>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            job: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).field(field)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
            job: self.job.as_deref(),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> ApiError {
        match error {
            QueueError::UnknownAccount(_) => ApiError::not_found("account"),
            QueueError::UnknownJob(_) => ApiError::not_found("job"),
            other => {
                tracing::error!(error = %other, "queue error behind an API request");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the job database is not answering; retry shortly",
                )
            }
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> ApiError {
        match error {
            SubmitError::Queue(error) => error.into(),
            SubmitError::CredentialsRejected => ApiError::new(
                StatusCode::CONFLICT,
                "credentials_rejected",
                error.to_string(),
            ),
            SubmitError::LoginBudgetSpent { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "login_budget_spent",
                error.to_string(),
            ),
        }
    }
}

impl From<CodeError> for ApiError {
    fn from(error: CodeError) -> ApiError {
        match error {
            CodeError::Queue(error) => error.into(),
            CodeError::NotAwaiting { .. } => {
                ApiError::new(StatusCode::CONFLICT, "not_awaiting_code", error.to_string())
            }
            CodeError::AlreadySubmitted => ApiError::new(
                StatusCode::CONFLICT,
                "code_already_submitted",
                error.to_string(),
            ),
            CodeError::Shape(_) => ApiError::invalid("code", error.to_string()),
        }
    }
}

/// A JSON body parsed with the path of the field that was wrong (`stores[1].location`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection: BytesRejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(status, "body_too_large", "the request body is too large")
                } else {
                    ApiError::new(status, "unreadable_body", rejection.body_text())
                }
            })?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => Ok(JsonBody(value)),
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
                        format!("the body is not valid JSON: {inner}"),
                    ))
                } else {
                    // serde's message names the field and what it wanted; never a value.
                    let field = if path == "." { None } else { Some(path) };
                    let mut error = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_field",
                        strip_position(&inner.to_string()),
                    );
                    error.field = field;
                    Err(error)
                }
            }
        }
    }
}

/// Query parameters, with a JSON error when they do not parse.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| QueryParams(query.0))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    rejection.body_text(),
                )
            })
    }
}

/// serde_json appends "at line 1 column 42" (the field path says more) and quotes string values
/// it did not expect, which could be a password sent in the wrong place: both go.
fn strip_position(message: &str) -> String {
    static QUOTED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#""(?:[^"\\]|\\.)*""#).expect("static regex")
    });
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    QUOTED.replace_all(message, "\"…\"").into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn field_errors_never_echo_string_values() {
        let message = r#"invalid type: string "hunter2", expected a map at line 1 column 30"#;
        assert_eq!(
            super::strip_position(message),
            r#"invalid type: string "…", expected a map"#
        );
    }
}
