-- Tessera schema, version 1 (SQLite). Times are Unix seconds (UTC); ids are UUID text.
CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE workspaces (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name            TEXT NOT NULL,
    description     TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX workspaces_organization ON workspaces (organization_id);

CREATE TABLE deployments (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id),
    name            TEXT NOT NULL,
    description     TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX deployments_organization ON deployments (organization_id, workspace_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    full_name     TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Roles of users and API tokens alike: principal_id is a user id or a token id.
CREATE TABLE role_bindings (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    principal_id    TEXT NOT NULL,
    entity_type     TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    role            TEXT NOT NULL,
    PRIMARY KEY (principal_id, entity_id)
);
CREATE INDEX role_bindings_organization ON role_bindings (organization_id, principal_id);
CREATE INDEX role_bindings_entity ON role_bindings (entity_id);

-- API tokens: metadata and the jti of live values. Never a token value.
CREATE TABLE api_tokens (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL REFERENCES organizations (id),
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    scope                TEXT NOT NULL,
    workspace_id         TEXT,
    deployment_id        TEXT,
    short_token          TEXT NOT NULL,
    current_jti          TEXT NOT NULL,
    previous_jti         TEXT,
    previous_valid_until INTEGER,
    start_at             INTEGER NOT NULL,
    end_at               INTEGER,
    expiry_period_days   INTEGER,
    version              INTEGER NOT NULL,
    last_used_at         INTEGER,
    last_rotated_at      INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    created_by_kind      TEXT NOT NULL,
    created_by_id        TEXT NOT NULL,
    updated_by_kind      TEXT NOT NULL,
    updated_by_id        TEXT NOT NULL,
    deleted_at           INTEGER
);
CREATE INDEX api_tokens_organization ON api_tokens (organization_id);

-- Signing keys; the private half sealed (AES-256-GCM) under the master key.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    algorithm          TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    public_jwk         TEXT NOT NULL,
    active             INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    retired_at         INTEGER
);
