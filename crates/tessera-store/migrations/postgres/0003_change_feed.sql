-- The change feed, in the database itself: each write that changes what a server keeps
-- in memory (a token's status, a session's end, the signing keys) notifies the channel
-- `tessera_changes` from a trigger, inside the writing transaction. PostgreSQL delivers
-- a NOTIFY when, and only when, that transaction commits: no committed change goes
-- untold, whichever server or operator command wrote it and whenever it dies.
-- Payload: {"kind", "id", "version"}; the receiver reads the row itself.

CREATE FUNCTION tessera_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes',
        json_build_object('kind', 'token', 'id', NEW.id, 'version', NEW.version)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER api_tokens_created AFTER INSERT ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION tessera_token_changed();

-- Not for `lastUsedAt`, names or descriptions: nobody caches those.
CREATE TRIGGER api_tokens_status_changed AFTER UPDATE ON api_tokens
    FOR EACH ROW WHEN (
        OLD.current_jti IS DISTINCT FROM NEW.current_jti
        OR OLD.previous_jti IS DISTINCT FROM NEW.previous_jti
        OR OLD.previous_valid_until IS DISTINCT FROM NEW.previous_valid_until
        OR OLD.start_at IS DISTINCT FROM NEW.start_at
        OR OLD.end_at IS DISTINCT FROM NEW.end_at
        OR OLD.version IS DISTINCT FROM NEW.version
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION tessera_token_changed();

CREATE FUNCTION tessera_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes',
        json_build_object('kind', 'session', 'id', NEW.id,
                          'version', COALESCE(NEW.ended_at, 0))::text);
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_ended AFTER UPDATE ON sessions
    FOR EACH ROW WHEN (OLD.ended_at IS DISTINCT FROM NEW.ended_at)
    EXECUTE FUNCTION tessera_session_changed();

CREATE FUNCTION tessera_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes', json_build_object('kind', 'keys')::text);
    RETURN NULL;
END $$;

CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_keys_changed();

-- The live sessions loaded at start and at each resync.
CREATE INDEX sessions_live ON sessions (absolute_expiry) WHERE ended_at IS NULL;
