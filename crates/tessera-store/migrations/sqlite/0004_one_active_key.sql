-- At most one active signing key, whatever two writers (a `tessera keys rotate` and a
-- server starting) do at the same moment: the second insert fails instead of leaving
-- two keys active.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active = 1;
