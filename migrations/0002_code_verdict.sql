-- While a job awaits a second code: the portal's verdict on the previous one (`two_factor/code_invalid`,
-- `two_factor/code_expired`), so the dashboard can say "that code was wrong, try again".
ALTER TABLE jobs ADD COLUMN code_verdict TEXT;
