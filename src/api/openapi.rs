//! The OpenAPI 3.1 document, derived by `utoipa` from the handlers' `#[utoipa::path]`
//! descriptions and the request and response types (`ToSchema`): the router is built from the same
//! descriptions, so a route cannot be missing from the document or the document name a route
//! that is not there. `docs/openapi.json` is that document checked in (a test keeps it equal;
//! `UPDATE_OPENAPI=1 cargo test --lib openapi` rewrites it); `/openapi.json` serves it with the
//! providers this worker has specs for.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};

use crate::provider::Registry;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pairing-worker API",
        version = "1",
        description = "Accounts, pairing jobs, verification codes and repair alerts for the \
            dashboard backend. Every `/v1` route needs `Authorization: Bearer <token>` \
            (`pairing-worker tokens create`) and only sees the token's organisation. Webhooks \
            are signed: `Pairing-Worker-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \
            \"<t>.<body>\")>`."
    ),
    servers((url = "http://127.0.0.1:8080")),
    security(("bearer" = [])),
    modifiers(&BearerToken),
    tags(
        (name = "accounts", description = "Connections to a provider's portal"),
        (name = "jobs", description = "Reconnects and re-checks, and the codes they wait for"),
        (name = "alerts", description = "What needs repairing, and what to show the acting user"),
        (name = "webhook", description = "Where events are delivered"),
        (name = "health checks", description = "How often every healthy account is checked in the background"),
        (name = "live alerts", description = "Who hears of a broken connection (email, SMS, printed ticket), the alert preferences, and the delivery log"),
        (name = "operations", description = "Liveness, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// The `bearer` security scheme the document's top-level `security` names.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token: `pairing-worker tokens create`"))
                    .build(),
            ),
        );
    }
}

/// The document's frame (info, security); the routes add their paths and schemas to it.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole document, every route included (`/metrics` too, wherever it is served).
pub fn document() -> utoipa::openapi::OpenApi {
    super::described_routes(true).split_for_parts().1
}

/// The document with the ids of the providers that have a spec, so a client (or a fuzzer) can
/// name a real one. Providers are data: the checked-in file leaves the list out.
pub fn document_for(providers: &[String]) -> utoipa::openapi::OpenApi {
    let mut doc = document();
    let provider = doc
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("CreateAccountBody"))
        .and_then(|schema| match schema {
            RefOr::T(Schema::Object(object)) => object.properties.get_mut("provider"),
            _ => None,
        });
    if let Some(RefOr::T(Schema::Object(provider))) = provider {
        provider.enum_values = Some(providers.iter().map(|id| id.as_str().into()).collect());
    }
    doc
}

/// The served document, rendered once when the router is built.
#[derive(Clone)]
pub struct Document(Arc<str>);

impl Document {
    pub fn for_registry(registry: &Registry) -> Document {
        let mut ids: Vec<String> = registry.supported().map(|spec| spec.id.clone()).collect();
        ids.sort_unstable();
        let text = document_for(&ids)
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        Document(text.into())
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    security(()),
    responses((status = 200, description = "OpenAPI 3.1", body = Object, content_type = "application/json"))
)]
pub(super) async fn openapi_json(Extension(document): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.0.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` is the derived document; `UPDATE_OPENAPI=1` rewrites it.
    #[test]
    fn the_checked_in_openapi_document_is_the_derived_one() {
        let text = document().to_pretty_json().unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &text).unwrap();
            return;
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == text,
            "docs/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test --lib openapi`"
        );
    }

    #[test]
    fn the_openapi_document_lists_every_error_code_and_the_providers() {
        use strum::IntoEnumIterator;
        let doc = serde_json::to_value(document_for(&["deliveroo".into()])).unwrap();
        let schemas = &doc["components"]["schemas"];
        let codes: Vec<String> = super::super::ErrorCode::iter()
            .map(|code| code.as_ref().to_string())
            .collect();
        assert_eq!(schemas["ErrorCode"]["enum"], serde_json::json!(codes));
        assert_eq!(
            schemas["CreateAccountBody"]["properties"]["provider"]["enum"],
            serde_json::json!(["deliveroo"])
        );
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for public in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            assert_eq!(
                doc["paths"][public]["get"]["security"],
                serde_json::json!([{}]),
                "{public} needs no token"
            );
        }
    }
}
