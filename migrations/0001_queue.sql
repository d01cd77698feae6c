-- One schema for SQLite and PostgreSQL: text ids, integer milliseconds since the epoch, JSON and
-- ciphertext as text. Nothing secret is stored outside `accounts.secrets` and `job_codes.code`.

-- Which keys have encrypted anything here; `key_check` proves a configured key is the same key.
CREATE TABLE encryption_keys (
    key_id TEXT PRIMARY KEY,
    key_check TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    provider TEXT NOT NULL,
    -- Encrypted JSON: username, password, TOTP secret, mailbox settings.
    secrets TEXT NOT NULL,
    key_id TEXT NOT NULL,
    -- Bumped whenever the merchant enters new credentials.
    credentials_version BIGINT NOT NULL,
    -- The credentials version the portal rejected: no automatic login until it changes.
    rejected_version BIGINT,
    -- A verification code was requested and may still be valid: no new login until then.
    code_pending_until BIGINT,
    -- JSON list of the stores this connection feeds (provider store id, location, brand).
    stores TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX accounts_by_organisation ON accounts (organisation);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    -- The merchant is at the dashboard and can type a code.
    interactive BIGINT NOT NULL,
    state TEXT NOT NULL,
    credentials_version BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    run_at BIGINT NOT NULL,
    lease_token TEXT,
    lease_expires BIGINT,
    worker TEXT,
    -- JSON of the open code request while `awaiting_code`.
    code_request TEXT,
    -- `category/reason` once finished with an outcome; `error` for infrastructure failures.
    outcome TEXT,
    result TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
-- At most one live job per account, across every worker.
CREATE UNIQUE INDEX one_live_job_per_account ON jobs (account_id)
    WHERE state IN ('queued', 'running', 'awaiting_code');
CREATE INDEX jobs_ready ON jobs (state, run_at);

-- A code the merchant submitted, until the worker running the job takes it (then deleted).
CREATE TABLE job_codes (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    key_id TEXT NOT NULL,
    submitted_at BIGINT NOT NULL
);

-- Logins the portal refused, for the rolling per-account budget.
CREATE TABLE login_failures (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_by_account ON login_failures (account_id, at);

-- Every finished job's verdict on its account; health and re-check results derive from it.
CREATE TABLE account_history (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    previous TEXT,
    change TEXT NOT NULL
);
CREATE INDEX account_history_by_account ON account_history (account_id, at);
