//! Every API error is JSON with a stable code, a message a developer understands, and the field
//! path when one input was wrong.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

use crate::queue::{CodeError, Job, QueueError, SubmitError};

/// Every error code the API answers with: a closed set, so the OpenAPI document lists them all.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, strum::AsRefStr, strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    /// No bearer token, or an unknown or revoked one (401).
    Unauthenticated,
    /// The acting user may not update credentials (403).
    Forbidden,
    /// No such account, job, webhook or route in this organisation (404).
    NotFound,
    /// The body is not JSON (400).
    MalformedJson,
    /// A field is missing, of the wrong type or out of range; `field` names it (422).
    InvalidField,
    /// A query parameter does not parse; `field` names it (400).
    InvalidQuery,
    /// The body could not be read (400).
    UnreadableBody,
    /// The body is over the limit (413).
    BodyTooLarge,
    /// The provider has no spec (422).
    UnknownProvider,
    /// A query parameter named like a secret (400).
    SecretInQuery,
    /// The account already has a live job, returned in `job` (409).
    AccountBusy,
    /// The portal rejected the stored credentials (409).
    CredentialsRejected,
    /// The account's failed-login budget is spent (409).
    LoginBudgetSpent,
    /// The job is not waiting for a code (409).
    NotAwaitingCode,
    /// A code for this request is already being checked (409).
    CodeAlreadySubmitted,
    /// The job database is not answering (503).
    Unavailable,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// The job a 409 is about (the account's live job).
    pub job: Option<Box<Job>>,
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// The account's live job, when the error is `account_busy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Box<Job>>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// Path of the offending field, e.g. `stores[1].location`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What any route behind the bearer token may answer, whatever it does.
#[derive(IntoResponses)]
#[allow(dead_code)] // only its OpenAPI description is used
pub enum CallerErrors {
    /// `secret_in_query`, `malformed_json`, `unreadable_body` or `invalid_query`.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `unauthenticated`: no bearer token, or an unknown or revoked one.
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// `unavailable`: the job database is not answering; retry shortly.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// What a route that reads a JSON body may answer about it.
#[derive(IntoResponses)]
#[allow(dead_code)] // only its OpenAPI description is used
pub enum BodyErrors {
    /// `body_too_large`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `invalid_field`: the `field` names which one.
    #[response(status = 422)]
    Invalid(ErrorBody),
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
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
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            message,
        )
        .field(field)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no such {what}"),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
            job: self.job,
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
                    ErrorCode::Unavailable,
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
                ErrorCode::CredentialsRejected,
                error.to_string(),
            ),
            SubmitError::LoginBudgetSpent { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::LoginBudgetSpent,
                error.to_string(),
            ),
        }
    }
}

impl From<CodeError> for ApiError {
    fn from(error: CodeError) -> ApiError {
        match error {
            CodeError::Queue(error) => error.into(),
            CodeError::NotAwaiting { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotAwaitingCode,
                error.to_string(),
            ),
            CodeError::AlreadySubmitted => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::CodeAlreadySubmitted,
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
                    ApiError::new(
                        status,
                        ErrorCode::BodyTooLarge,
                        "the request body is too large",
                    )
                } else {
                    ApiError::new(status, ErrorCode::UnreadableBody, rejection.body_text())
                }
            })?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            // Every body is an object: serde also fills a struct from an array, field by field
            // in order (`[null, null]` would read as "remove the TOTP secret").
            Ok(_) if bytes.trim_ascii_start().starts_with(b"[") => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                "invalid type: sequence, expected a JSON object",
            )),
            Ok(value) => Ok(JsonBody(value)),
            Err(error) => {
                let path = error.path().clone();
                let inner = error.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::MalformedJson,
                        format!("the body is not valid JSON: {inner}"),
                    ))
                } else {
                    // The field's path and what it wanted; never the value sent.
                    let message = inner.to_string();
                    let mut error = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        ErrorCode::InvalidField,
                        describe(&message),
                    );
                    error.field = field_path(&path, &message);
                    Err(error)
                }
            }
        }
    }
}

/// Query parameters, with a JSON error (the parameter and what it wanted) when they do not parse.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(QueryParams)
            .map_err(|error| {
                let path = error.path().clone();
                let message = error.into_inner().to_string();
                let mut error = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidQuery,
                    describe(&message),
                );
                error.field = field_path(&path, &message);
                error
            })
    }
}

/// `stores[1].location`; for an unknown field, the object holding it (its own name is the caller's
/// text, not ours).
fn field_path(path: &serde_path_to_error::Path, message: &str) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    if message.starts_with("unknown field") {
        segments.pop();
    }
    let mut text = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => text.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            // Enum variants and unknown segments are not field names.
            _ => return (!text.is_empty()).then_some(text),
        }
    }
    (!text.is_empty()).then_some(text)
}

/// serde's messages quote the value they did not expect (invalid type: string "hunter2", unknown
/// variant or integer in backticks), which could be a password sent in the wrong place, and
/// serde_json adds "at line 1 column 42" (the field path says more). Only the part after
/// "expected" is ours (the allowed type or names): known shapes keep it and lose the value;
/// any other message that quotes something becomes a generic one.
fn describe(message: &str) -> String {
    use std::sync::LazyLock;
    static INVALID: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#"^invalid (type|value): (?:(string) "(?:[^"\\]|\\.)*"|([a-z ]+?) `[^`]*`|([a-z ]+)), expected (.+)$"#,
        )
        .expect("static regex")
    });
    // Our names only: identifiers in backticks after the last "expected".
    static UNKNOWN: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"^unknown (variant|field) .*, expected ((?:one of )?`[\w.-]*`(?:(?:, | or )`[\w.-]*`)*|there are no \w+)$",
        )
        .expect("static regex")
    });
    static OURS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"^(?:missing|duplicate) field `[\w.-]*`$").expect("static regex")
    });
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    if let Some(caps) = INVALID.captures(message) {
        let kind = caps
            .get(2)
            .or(caps.get(3))
            .or(caps.get(4))
            .map_or("", |m| m.as_str());
        return format!("invalid {}: {kind}, expected {}", &caps[1], &caps[5]);
    }
    if let Some(caps) = UNKNOWN.captures(message) {
        return format!("unknown {}, expected {}", &caps[1], &caps[2]);
    }
    if OURS.is_match(message) || !message.contains(['"', '`', '\'']) {
        return message.to_string();
    }
    "the value is not valid here".to_string()
}

#[cfg(test)]
mod tests {
    use super::{describe, ErrorCode, JsonBody};
    use axum::extract::FromRequest;

    #[tokio::test]
    async fn a_body_is_an_object_never_an_array() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            #[serde(default)]
            a: Option<String>,
        }
        let read = |text: &'static str| {
            JsonBody::<Body>::from_request(axum::extract::Request::new(text.into()), &())
        };
        let Err(error) = read(" [null]").await else {
            panic!("an array was read as an object")
        };
        assert_eq!(
            (error.status.as_u16(), error.code),
            (422, ErrorCode::InvalidField)
        );
        assert!(read(r#"{"a": null}"#).await.is_ok());
        let Err(error) = read("[nul").await else {
            panic!("not JSON")
        };
        assert_eq!(error.code, ErrorCode::MalformedJson);
    }

    #[test]
    fn field_errors_never_echo_the_value() {
        for (message, expected) in [
            (
                r#"invalid type: string "hunter2", expected a map at line 1 column 30"#,
                "invalid type: string, expected a map",
            ),
            (
                r#"invalid type: string "a\", expected hunter2", expected a map"#,
                "invalid type: string, expected a map",
            ),
            (
                "invalid type: integer `12345`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid value: integer `70000`, expected u16",
                "invalid value: integer, expected u16",
            ),
            (
                "invalid type: null, expected a string",
                "invalid type: null, expected a string",
            ),
            (
                "unknown variant `hunter2`, expected `pair` or `recheck`",
                "unknown variant, expected `pair` or `recheck`",
            ),
            (
                "unknown variant `x`, expected `hunter2`, expected `pair` or `recheck`",
                "unknown variant, expected `pair` or `recheck`",
            ),
            (
                "unknown field `hunter2`, expected one of `provider`, `credentials`",
                "unknown field, expected one of `provider`, `credentials`",
            ),
            ("missing field `password`", "missing field `password`"),
            ("premature end of input", "premature end of input"),
            ("something `hunter2` odd", "the value is not valid here"),
        ] {
            assert_eq!(describe(message), expected, "{message}");
        }
    }
}
