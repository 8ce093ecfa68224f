-- Sessions for people, OAuth clients, authorization codes, device grants (PostgreSQL).
-- Secrets are stored as SHA-256 hashes, never as values.
CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    loopback      BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id),
    organization_id   TEXT,
    client_id         TEXT NOT NULL,
    signed_in_at      BIGINT NOT NULL,
    absolute_expiry   BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_refreshed_at BIGINT,
    ended_at          BIGINT,
    ip                TEXT,
    user_agent        TEXT,
    cookie_hash       TEXT UNIQUE,
    -- The browser sign-in a client session came from.
    browser_session_id TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    hash       TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    issued_at  BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE authorization_codes (
    hash            TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id),
    organization_id TEXT,
    signed_in_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    session_id      TEXT,
    browser_session_id TEXT
);

CREATE TABLE device_grants (
    hash            TEXT PRIMARY KEY,
    user_code       TEXT NOT NULL UNIQUE,
    client_id       TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    interval_secs   BIGINT NOT NULL,
    last_poll_at    BIGINT,
    status          TEXT NOT NULL,
    user_id         TEXT,
    organization_id TEXT,
    signed_in_at    BIGINT
);
