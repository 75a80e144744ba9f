-- 002_fees: the fee ledger. Entries and payments are projections of journal events and,
-- like the journal, append-only: a correction is a new reversing entry, never an edit.

CREATE TABLE fee_entries (
    entry_id       TEXT PRIMARY KEY,     -- ACCOUNT/PERIOD/N, or .../N/reversal
    kind           TEXT NOT NULL CHECK (kind IN ('fee', 'reversal')),
    account_id     TEXT NOT NULL REFERENCES accounts (account_id),
    vault_id       TEXT NOT NULL,
    period         TEXT NOT NULL,        -- YYYY-MM
    fee_type       TEXT NOT NULL,
    perf_share     TEXT NOT NULL,
    flat_usd       TEXT NOT NULL,
    realized_pnl   TEXT NOT NULL,
    carry_in       TEXT NOT NULL,
    net            TEXT NOT NULL,
    perf_fee       TEXT NOT NULL,
    flat_fee       TEXT NOT NULL,
    carry_out      TEXT NOT NULL,
    active_days    INTEGER NOT NULL,
    days_in_period INTEGER NOT NULL,
    fee_due        TEXT NOT NULL,        -- negative for a reversal
    reverses       TEXT REFERENCES fee_entries (entry_id),
    reason         TEXT,
    at             INTEGER NOT NULL,
    seq            INTEGER NOT NULL
) STRICT;

CREATE INDEX fee_entries_account ON fee_entries (account_id, period);

CREATE TABLE fee_payments (
    payment_id TEXT PRIMARY KEY,         -- ENTRY/payment/N
    entry_id   TEXT NOT NULL REFERENCES fee_entries (entry_id),
    amount     TEXT NOT NULL,
    ref        TEXT NOT NULL,
    at         INTEGER NOT NULL,
    seq        INTEGER NOT NULL
) STRICT;

CREATE TRIGGER fee_entries_no_update BEFORE UPDATE ON fee_entries
BEGIN
    SELECT RAISE(ABORT, 'fee_entries is append-only: UPDATE refused');
END;

CREATE TRIGGER fee_entries_no_delete BEFORE DELETE ON fee_entries
BEGIN
    SELECT RAISE(ABORT, 'fee_entries is append-only: DELETE refused');
END;

CREATE TRIGGER fee_payments_no_update BEFORE UPDATE ON fee_payments
BEGIN
    SELECT RAISE(ABORT, 'fee_payments is append-only: UPDATE refused');
END;

CREATE TRIGGER fee_payments_no_delete BEFORE DELETE ON fee_payments
BEGIN
    SELECT RAISE(ABORT, 'fee_payments is append-only: DELETE refused');
END;

-- REPLACE deletes the old row without firing DELETE triggers (unless recursive triggers
-- are on): refuse any insert that would overwrite an existing entry or payment.
CREATE TRIGGER fee_entries_no_replace BEFORE INSERT ON fee_entries
WHEN EXISTS (SELECT 1 FROM fee_entries WHERE entry_id = NEW.entry_id)
BEGIN
    SELECT RAISE(ABORT, 'fee_entries is append-only: an entry id is never reused');
END;

CREATE TRIGGER fee_payments_no_replace BEFORE INSERT ON fee_payments
WHEN EXISTS (SELECT 1 FROM fee_payments WHERE payment_id = NEW.payment_id)
BEGIN
    SELECT RAISE(ABORT, 'fee_payments is append-only: a payment id is never reused');
END;
