-- Every password a run sends, recorded durably before it is sent: the failed-login budget counts
-- a submission until a verdict proves the portal accepted it, so a crash, a cancel or a lost
-- browser after the submit can never hide a failed login.
ALTER TABLE login_failures RENAME TO password_submissions;
-- The run (lease token) that sent it; NULL for rows recorded before this migration.
ALTER TABLE password_submissions ADD COLUMN run_token TEXT;
-- `failed`, `accepted`, or NULL while no verdict has proved either (counts as failed).
ALTER TABLE password_submissions ADD COLUMN verdict TEXT;
UPDATE password_submissions SET verdict = 'failed';
