-- Scheduled health checks: every healthy account is re-checked on its organisation's schedule.
-- When the account is next due; NULL until the scheduler first places it (spread over a period).
ALTER TABLE accounts ADD COLUMN next_check_at BIGINT;
CREATE INDEX accounts_next_check ON accounts (next_check_at);
-- An organisation's own schedule (no row: the worker's default); 0 turns checks off.
CREATE TABLE health_check_schedules (
    organisation TEXT PRIMARY KEY,
    every_ms BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
