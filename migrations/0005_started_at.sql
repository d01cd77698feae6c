-- When the latest run of a job was claimed: claim -> outcome is what the dashboard's spinner
-- waits for, and what operators watch (queue wait = started_at - created_at).
ALTER TABLE jobs ADD COLUMN started_at BIGINT;
