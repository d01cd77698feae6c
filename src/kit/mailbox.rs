//! How the sandbox "sends" a code email: straight into the merchant's mailbox (IMAP APPEND).

use std::time::Duration;

use crate::codes::mailbox::{connect, protocol, MailboxError};
use crate::codes::MailboxConfig;

/// Puts a message straight into a mailbox.
pub async fn deliver(config: &MailboxConfig, message: &[u8]) -> Result<(), MailboxError> {
    let mut session = connect(config, Duration::from_secs(10)).await?;
    session
        .append(&config.folder, None, None, message)
        .await
        .map_err(protocol)?;
    let _ = session.logout().await;
    Ok(())
}
