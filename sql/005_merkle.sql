-- 005_merkle: the journal's Merkle tree (SPEC §10) and the public keys of tree heads.
--
-- merkle_nodes: the hashes of perfect subtrees of 2^level leaves, level >= 4 (below that a
-- subtree is recomputed from at most 16 journal rows); leaf i is journal row i + 1 (RFC
-- 6962: SHA-256(0x00 || the row's hash bytes)). A cache derived from the journal alone,
-- extended when a head or a proof is asked; verify recomputes it, replay does not compare
-- it.
CREATE TABLE merkle_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,                -- 32 bytes
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- audit_keys: the public half of the key that signs this home's tree heads (the private
-- half is the home's signing.key, mode 0600, never in the database).
CREATE TABLE audit_keys (
    public_key TEXT PRIMARY KEY,        -- hex of the raw 32-byte Ed25519 public key
    created_at INTEGER NOT NULL         -- µs since the epoch
) STRICT, WITHOUT ROWID;
