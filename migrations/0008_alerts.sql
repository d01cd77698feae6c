-- Live alerts: who hears of a broken connection, how, and every message owed to them.

-- An organisation's alert contacts: the channels each chose, the addresses, the language.
CREATE TABLE alert_contacts (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    channels TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    printer_host TEXT,
    printer_port BIGINT,
    printer_columns BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alert_contacts_organisation ON alert_contacts (organisation);

-- An organisation's alert settings (no row: the defaults). The link secret signs repair links;
-- it is sealed like every other secret.
CREATE TABLE alert_preferences (
    organisation TEXT PRIMARY KEY,
    threshold BIGINT NOT NULL,
    cap_per_day BIGINT NOT NULL,
    digest_window_ms BIGINT NOT NULL,
    recovery BIGINT NOT NULL,
    link_ttl_ms BIGINT NOT NULL,
    repair_url TEXT,
    link_secret TEXT,
    key_id TEXT,
    updated_at BIGINT NOT NULL
);

-- The outbox: one row per health transition, recipient and channel, written in the transaction
-- that records the transition. Rows of one recipient and channel due together go out as one
-- message (a digest when there are several); `batch` names the message that carried a row.
CREATE TABLE alert_messages (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT,
    state TEXT NOT NULL,
    hold TEXT,
    batch TEXT,
    batch_size BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX alert_messages_due ON alert_messages (state, next_at);
CREATE INDEX alert_messages_recipient ON alert_messages (contact_id, channel, state);
CREATE INDEX alert_messages_account ON alert_messages (account_id, kind);
