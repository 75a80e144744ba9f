-- 007_invoices: fee invoices at payment processors (Stripe, BTCPay), SPEC §9 Collection.
-- A projection of the fees.invoiced / fees.voided commands and of the processor payments
-- recorded by fees.paid: at most one invoice per fee entry; its state follows the
-- processor's answers as vanta last recorded them.

CREATE TABLE fee_invoices (
    entry_id   TEXT PRIMARY KEY REFERENCES fee_entries (entry_id),
    processor  TEXT NOT NULL CHECK (processor IN ('stripe', 'btcpay')),
    ref        TEXT NOT NULL,            -- the processor's invoice id
    url        TEXT,                     -- where the follower pays (hosted page)
    amount     TEXT NOT NULL,            -- what was invoiced, in the vault's currency
    currency   TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('open', 'paid', 'partial', 'overpaid', 'void')),
    paid       TEXT NOT NULL,            -- recorded as paid through this invoice
    at         INTEGER NOT NULL,         -- µs since the epoch: invoiced
    seq        INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX fee_invoices_ref ON fee_invoices (processor, ref);
