-- Logins per provider, paced across every worker on this database: one row per provider holding
-- the GCRA's theoretical arrival time (ms). A login is allowed when it keeps that time within one
-- period of now; the single-row UPDATE that allows it is atomic on both backends.
CREATE TABLE provider_login_pace (
    provider TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
