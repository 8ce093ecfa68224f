-- At most one active signing key, whatever two writers (a `tessera keys rotate` and a
-- server starting) do at the same moment: the second insert fails instead of leaving
-- two keys active.
-- A database where that race already happened keeps the newest active key active.
UPDATE signing_keys SET active = 0
WHERE active = 1 AND kid <> (
    SELECT kid FROM signing_keys WHERE active = 1 ORDER BY created_at DESC, kid DESC LIMIT 1
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active = 1;
