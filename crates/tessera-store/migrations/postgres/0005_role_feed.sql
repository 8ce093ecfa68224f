-- Role changes on the change feed: a principal's roles granted, changed or removed (a
-- user's organization role is its membership) notify `tessera_changes` from the writing
-- transaction, so every server forgets the roles it keeps in memory for that principal.
-- Payload: {"kind": "roles", "id": <principal id>, "version": <writing transaction id>}.
-- (PostgreSQL folds identical notifications of one transaction into one.)

CREATE FUNCTION tessera_roles_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    principal TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        principal := OLD.principal_id;
    ELSE
        principal := NEW.principal_id;
    END IF;
    PERFORM pg_notify('tessera_changes',
        json_build_object('kind', 'roles', 'id', principal,
                          'version', txid_current())::text);
    RETURN NULL;
END $$;

CREATE TRIGGER role_bindings_changed AFTER INSERT OR UPDATE OR DELETE ON role_bindings
    FOR EACH ROW EXECUTE FUNCTION tessera_roles_changed();
