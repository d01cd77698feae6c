//! Account routes: create, list, read, update and delete a connection to a provider's portal.
//! Credentials go in and are sealed; nothing secret ever comes back out.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{BodyErrors, CallerErrors, ErrorBody, ErrorCode};
use super::{audit, Acting, ApiError, ApiState, Caller, CredentialsBody, JsonBody, MailboxBody};
use crate::codes::TotpSource;
use crate::queue::{Account, AccountSecrets, AccountUpdate, Health, NewAccount, Queue, StoreRef};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountBody {
    /// A provider with a spec (`pairing-worker providers`).
    pub provider: String,
    pub credentials: CredentialsBody,
    /// Base32 secret or `otpauth://` URL of the portal's authenticator-app 2FA.
    #[serde(default)]
    #[schema(value_type = Option<String>, write_only)]
    pub totp_secret: Option<SecretString>,
    /// The mailbox the platform's codes are sent to, read over IMAPS.
    #[serde(default)]
    pub mailbox: Option<MailboxBody>,
    #[serde(default)]
    pub stores: Vec<StoreRef>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountBody {
    #[serde(default)]
    pub credentials: Option<CredentialsBody>,
    /// Base32 secret or `otpauth://` URL; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, nullable, write_only)]
    pub totp_secret: Option<Option<SecretString>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<MailboxBody>, nullable)]
    pub mailbox: Option<Option<MailboxBody>>,
    #[serde(default)]
    pub stores: Option<Vec<StoreRef>>,
}

/// Absent → `None` (unchanged); `null` → `Some(None)` (removed); a value → `Some(Some(..))`.
fn double_option<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn check_totp(secret: &Option<SecretString>) -> Result<(), ApiError> {
    if let Some(secret) = secret {
        TotpSource::parse(secret).map_err(|e| ApiError::invalid("totp_secret", e.to_string()))?;
    }
    Ok(())
}

fn check_stores(stores: &[StoreRef]) -> Result<(), ApiError> {
    for (i, store) in stores.iter().enumerate() {
        if store.id.trim().is_empty() {
            return Err(ApiError::invalid(
                &format!("stores[{i}].id"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

/// An account as the API shows it: never a secret, always its health.
#[derive(Serialize, ToSchema)]
pub struct AccountView {
    #[serde(flatten)]
    pub account: Account,
    pub health: Health,
}

async fn view(queue: &Queue, account: Account) -> Result<AccountView, ApiError> {
    let health = queue.health(&account.id).await?;
    Ok(AccountView { account, health })
}

/// List the organisation's accounts with their health.
#[utoipa::path(
    get,
    path = "/v1/accounts",
    tag = "accounts",
    params(Acting),
    responses(
        (status = 200, description = "The organisation's accounts", body = Vec<AccountView>),
        CallerErrors,
    )
)]
pub(super) async fn list_accounts(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let mut healths = state.queue.healths(&caller.organisation).await?;
    let accounts = state.queue.accounts(&caller.organisation).await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|account| AccountView {
                health: healths.remove(&account.id).unwrap_or(Health::Unknown),
                account,
            })
            .collect(),
    ))
}

/// Create an account (needs credential permission).
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    params(Acting),
    request_body = CreateAccountBody,
    responses(
        (status = 201, description = "Created", body = AccountView),
        CallerErrors,
        (status = 403, description = "`forbidden`: this user may not update credentials", body = ErrorBody),
        BodyErrors,
        (status = 422, description = "`invalid_field` (the `field` names it; a mailbox host this worker may not reach) or `unknown_provider`", body = ErrorBody),
    )
)]
pub(super) async fn create_account(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateAccountBody>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    caller.require_credential_permission()?;
    state.registry.get(&body.provider).map_err(|_| {
        let mut supported: Vec<&str> = state.registry.supported().map(|s| s.id.as_str()).collect();
        supported.sort_unstable();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::UnknownProvider,
            format!(
                "not a supported provider: expected one of {}",
                supported.join(", ")
            ),
        )
        .field("provider")
    })?;
    check_totp(&body.totp_secret)?;
    check_stores(&body.stores)?;
    let mailbox = body.mailbox.map(MailboxBody::into_config).transpose()?;
    super::network::vet_mailbox(&state.reach, mailbox.as_ref()).await?;
    let account = state
        .queue
        .create_account(NewAccount {
            organisation: caller.organisation.clone(),
            provider: body.provider,
            secrets: AccountSecrets {
                credentials: body.credentials.into_credentials()?,
                totp: body.totp_secret,
                mailbox,
            },
            stores: body.stores,
        })
        .await?;
    audit(
        &state,
        &caller,
        Some(&account.id),
        None,
        "credentials.create",
        "ok",
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(view(&state.queue, account).await?),
    ))
}

/// Read an account (never its secrets).
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = String, Path, description = "The account id."), Acting),
    responses(
        (status = 200, description = "The account", body = AccountView),
        CallerErrors,
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
    )
)]
pub(super) async fn get_account(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let account = state
        .queue
        .account(&caller.organisation, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    Ok(Json(view(&state.queue, account).await?))
}

/// Update credentials, TOTP secret or mailbox (each needs credential permission), or stores.
#[utoipa::path(
    patch,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = String, Path, description = "The account id."), Acting),
    request_body = UpdateAccountBody,
    responses(
        (status = 200, description = "The updated account", body = AccountView),
        CallerErrors,
        (status = 403, description = "`forbidden`: this user may not update credentials", body = ErrorBody),
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
        BodyErrors,
    )
)]
pub(super) async fn update_account(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateAccountBody>,
) -> Result<Json<AccountView>, ApiError> {
    let touches_secrets =
        body.credentials.is_some() || body.totp_secret.is_some() || body.mailbox.is_some();
    if touches_secrets {
        caller.require_credential_permission()?;
    }
    if let Some(secret) = &body.totp_secret {
        check_totp(secret)?;
    }
    if let Some(stores) = &body.stores {
        check_stores(stores)?;
    }
    let update = AccountUpdate {
        credentials: body
            .credentials
            .map(CredentialsBody::into_credentials)
            .transpose()?,
        totp: body.totp_secret,
        mailbox: body
            .mailbox
            .map(|mailbox| mailbox.map(MailboxBody::into_config).transpose())
            .transpose()?,
        stores: body.stores,
    };
    let mailbox = update.mailbox.as_ref().and_then(Option::as_ref);
    super::network::vet_mailbox(&state.reach, mailbox).await?;
    let account = state
        .queue
        .update_account(&caller.organisation, &id, update)
        .await?;
    if touches_secrets {
        audit(&state, &caller, Some(&id), None, "credentials.update", "ok").await;
    }
    Ok(Json(view(&state.queue, account).await?))
}

/// Delete an account and destroy its credentials (needs credential permission).
#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = String, Path, description = "The account id."), Acting),
    responses(
        (status = 204, description = "Deleted"),
        CallerErrors,
        (status = 403, description = "`forbidden`: this user may not update credentials", body = ErrorBody),
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
    )
)]
pub(super) async fn delete_account(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_credential_permission()?;
    if !state
        .queue
        .delete_account(&caller.organisation, &id)
        .await?
    {
        return Err(ApiError::not_found("account"));
    }
    audit(&state, &caller, Some(&id), None, "credentials.delete", "ok").await;
    Ok(StatusCode::NO_CONTENT)
}
