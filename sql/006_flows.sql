-- 006_flows: capital flows (SPEC §9) and the fee legs of equity-based agreements.
--
-- flows: one row per deposit (+) or withdrawal (-) of an account: `vanta flow record` for
-- paper and shadow books (source 'manual', its command's journal row), the cash that
-- reconciliation found unexplained at a live venue (source 'reconcile', its `flow` row).
-- A flow changes cash and net contributions, never PnL. Append-only like the journal;
-- filled from the journal for homes made before this migration.
CREATE TABLE flows (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    seq        INTEGER NOT NULL,        -- the journal row that recorded the flow
    at         INTEGER NOT NULL,        -- µs since the epoch
    amount     TEXT NOT NULL,           -- signed: deposit > 0, withdrawal < 0
    kind       TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
    source     TEXT NOT NULL CHECK (source IN ('manual', 'reconcile')),
    ref        TEXT,
    PRIMARY KEY (account_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER flows_no_update BEFORE UPDATE ON flows
BEGIN
    SELECT RAISE(ABORT, 'flows is append-only: UPDATE refused');
END;

CREATE TRIGGER flows_no_delete BEFORE DELETE ON flows
BEGIN
    SELECT RAISE(ABORT, 'flows is append-only: DELETE refused');
END;

INSERT INTO flows (account_id, seq, at, amount, kind, source, ref)
SELECT json_extract(payload, '$.account_id'), seq,
       CAST(strftime('%s', substr(ts, 1, 19)) AS INTEGER) * 1000000
         + CASE WHEN length(ts) > 20 THEN CAST(substr(ts, 21, 6) AS INTEGER) ELSE 0 END,
       json_extract(payload, '$.amount'), json_extract(payload, '$.kind'), 'reconcile', NULL
FROM journal
WHERE kind = 'flow';

-- fee_entries: the legs of SPEC §9 (NULL in entries billed before this migration, which
-- were all on the realized basis with no management fee). `period` is YYYY-MM or YYYY-Qn.
ALTER TABLE fee_entries ADD COLUMN basis TEXT;          -- realized | equity_hwm
ALTER TABLE fee_entries ADD COLUMN profit_end TEXT;     -- P = E - C at the period's close
ALTER TABLE fee_entries ADD COLUMN hwm_in TEXT;         -- high-water mark of P before
ALTER TABLE fee_entries ADD COLUMN hwm_out TEXT;        -- and after the entry
ALTER TABLE fee_entries ADD COLUMN management_pct TEXT; -- annual fraction
ALTER TABLE fee_entries ADD COLUMN mgmt_base TEXT;      -- sum of E_close over active days
ALTER TABLE fee_entries ADD COLUMN mgmt_fee TEXT;       -- rounded to cents
