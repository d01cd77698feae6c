-- Bearer tokens of the HTTP API, stored as SHA-256 of the token (tokens are 256 random bits, so a
-- fast hash is enough: nothing to brute-force).
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Who did what to which account, and how it ended: never a secret.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    actor TEXT NOT NULL,
    account_id TEXT,
    job_id TEXT,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX audit_log_by_organisation ON audit_log (organisation, at);
