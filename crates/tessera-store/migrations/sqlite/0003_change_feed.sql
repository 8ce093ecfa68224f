-- The change feed (SQLite). One server owns a SQLite database, so there is nobody to
-- notify: this version adds only what both backends share, the index of live sessions
-- loaded at start.
CREATE INDEX sessions_live ON sessions (absolute_expiry) WHERE ended_at IS NULL;
