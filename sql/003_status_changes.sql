-- 003_status_changes: when each follower was paused, resumed or removed. A projection of
-- the follower.pause / follower.resume / follower.remove commands, append-only like the
-- journal, so the flat fee can count the days a follower was paused for the whole day
-- (SPEC §4 Fees). Filled from the journal for homes made before this migration.

CREATE TABLE account_status_changes (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    seq        INTEGER NOT NULL,        -- the command's journal row
    at         INTEGER NOT NULL,        -- µs since the epoch
    status     TEXT NOT NULL CHECK (status IN ('active', 'paused', 'removed')),
    PRIMARY KEY (account_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER account_status_changes_no_update BEFORE UPDATE ON account_status_changes
BEGIN
    SELECT RAISE(ABORT, 'account_status_changes is append-only: UPDATE refused');
END;

CREATE TRIGGER account_status_changes_no_delete BEFORE DELETE ON account_status_changes
BEGIN
    SELECT RAISE(ABORT, 'account_status_changes is append-only: DELETE refused');
END;

-- Ids that differ only in case are refused at onboarding: found through this index.
CREATE INDEX accounts_folded ON accounts (lower(account_id));

-- Journal times are canonical (YYYY-MM-DDTHH:MM:SS[.ffffff]Z): whole seconds plus µs.
INSERT INTO account_status_changes (account_id, seq, at, status)
SELECT json_extract(payload, '$.account_id'), seq,
       CAST(strftime('%s', substr(ts, 1, 19)) AS INTEGER) * 1000000
         + CASE WHEN length(ts) > 20 THEN CAST(substr(ts, 21, 6) AS INTEGER) ELSE 0 END,
       CASE kind WHEN 'follower.pause' THEN 'paused'
                 WHEN 'follower.resume' THEN 'active' ELSE 'removed' END
FROM journal
WHERE kind IN ('follower.pause', 'follower.resume', 'follower.remove');
