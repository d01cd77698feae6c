-- One webhook endpoint per organisation; its signing secret is sealed like any other secret.
CREATE TABLE webhooks (
    organisation TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every event to deliver, and how delivering it went (kept as the delivery record).
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
