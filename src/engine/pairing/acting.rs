//! Acting on a recognised page: fill and click what its rule says, type a code, and wait until the
//! page is another one (or stays as it is for too long).

use super::ending::Unrecognized;
use super::*;

impl Run<'_> {
    pub(super) async fn act(&self, rule: &PageRule) -> Result<(), PairingError> {
        for action in &rule.actions {
            match action {
                Action::Fill { target, value } => {
                    let text = match value {
                        FillValue::Username => {
                            crate::digits::phone_login_as_ascii(&self.credentials.username)
                        }
                        FillValue::Password => {
                            std::borrow::Cow::Borrowed(self.credentials.password.expose_secret())
                        }
                    };
                    self.session
                        .fill(&target.source, &text, self.spec.input)
                        .await?;
                }
                Action::Click { target } => {
                    self.session.click(&target.source, self.spec.input).await?
                }
            }
        }
        Ok(())
    }

    /// Types a code into one field or one digit per box, then submits. `false`: wrong length.
    pub(super) async fn type_code(
        &mut self,
        rule: &PageRule,
        code: SecretString,
    ) -> Result<bool, PairingError> {
        let code_page = rule.code.as_ref().expect("code rule");
        // Whatever script the merchant typed it in, the portal's input takes ASCII digits.
        let code = Zeroizing::new(crate::digits::to_ascii_digits(code.expose_secret().trim()));
        let css = &code_page.inputs.source;
        let boxes = self.session.count_visible(css).await?;
        let fits = match boxes {
            0 => false,
            1 => code_page.length.is_none_or(|n| n == code.chars().count()),
            boxes => boxes == code.chars().count(),
        };
        if !fits {
            return Ok(false);
        }
        if boxes == 1 {
            self.session.fill(css, &code, self.spec.input).await?;
        } else {
            self.session.fill_each(css, &code, self.spec.input).await?;
        }
        self.typed_codes.push(code);
        self.session
            .click(&code_page.submit.source, self.spec.input)
            .await?;
        Ok(true)
    }

    /// Waits until the page is recognisably different from `before` (another page, overlay or
    /// message, or a new document): never acts twice on one unchanged page.
    pub(super) async fn wait_for_change(
        &self,
        before: &Classification,
        before_document: &str,
    ) -> Result<Changed, PairingError> {
        let deadline = Instant::now() + Duration::from_millis(self.spec.step_timeout_ms);
        let key = before.state_key();
        loop {
            match self.look().await? {
                // An error nobody explains may be a page still drawing itself ("Loading…" in a
                // status region): take it once the page has settled, not on first sight.
                (Ok(found), _)
                    if found.outcome == Some(Outcome::UnrecognizedPage)
                        && self
                            .session
                            .wait_for_mutation(
                                deadline
                                    .saturating_duration_since(Instant::now())
                                    .min(SETTLED),
                            )
                            .await? =>
                {
                    continue
                }
                (Ok(found), document)
                    if found.state_key() != key || document != before_document =>
                {
                    return Ok(Changed::To(found, document))
                }
                (Ok(_), _) => {}
                // A page in transition may match nothing for a moment: it ends as unrecognised
                // once it has stopped changing (or at the deadline), not a full step timeout later.
                (Err(unrecognized), _) if Instant::now() >= deadline => {
                    return Ok(Changed::Unrecognized(unrecognized))
                }
                (Err(unrecognized), _) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let moved = self.session.wait_for_mutation(left.min(SETTLED)).await?;
                    if !moved {
                        match self.look().await? {
                            (Err(_), _) => return Ok(Changed::Unrecognized(unrecognized)),
                            (Ok(found), document)
                                if found.state_key() != key || document != before_document =>
                            {
                                return Ok(Changed::To(found, document))
                            }
                            (Ok(_), _) => {}
                        }
                    }
                    continue;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Changed::Stuck);
            }
            self.session
                .wait_for_mutation(left.min(MUTATION_POLL))
                .await?;
        }
    }
}

pub(super) enum Changed {
    To(Classification, String),
    Unrecognized(Unrecognized),
    Stuck,
}

pub(super) fn describe(action: &Action) -> String {
    match action {
        Action::Fill {
            target,
            value: FillValue::Username,
        } => format!("filled {} with the username", target.source),
        Action::Fill {
            target,
            value: FillValue::Password,
        } => format!("filled {} with the password", target.source),
        Action::Click { target } => format!("clicked {}", target.source),
    }
}
