-- 004_live_orders: the order lifecycle of live venues (SPEC §8).
--
-- orders: every status of domain/orders.py (`cancelled` is spelt `canceled`, as the
-- venues spell it), the venue's order id, the average fill price and when the last venue
-- answer was recorded. A paper order is written once, settled; a live order is written
-- when it is submitted (write-ahead) and updated with each answer.
-- fills: keyed by the venue's trade id and its time (the primary key (account_id, at,
-- fill_id) so records a venue's trade once); `at` is the venue's time of the execution (fees
-- count executions by it), `recorded_at` when vanta recorded it (NULL: the same moment,
-- as for paper fills); `fee_currency` the currency of `commission` (NULL: the quote).

CREATE TABLE orders_004 (
    order_id        TEXT PRIMARY KEY,   -- cycle/account/symbol: a cycle's orders are a range
    client_order_id TEXT NOT NULL,
    cycle_id        TEXT NOT NULL REFERENCES cycles (cycle_id),
    account_id      TEXT NOT NULL REFERENCES accounts (account_id),
    parent_id       TEXT NOT NULL,      -- the cycle's intent for this symbol
    kind            TEXT NOT NULL CHECK (kind IN ('order', 'child_order')),
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty             TEXT NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('staged', 'submitted', 'unknown', 'accepted', 'partially_filled',
                          'pending_cancel', 'filled', 'canceled', 'rejected', 'expired',
                          'shadow')),
    filled_qty      TEXT NOT NULL,
    reason          TEXT,
    venue_order_id  TEXT,
    avg_price       TEXT,
    updated_at      INTEGER
) STRICT, WITHOUT ROWID;

INSERT INTO orders_004 (order_id, client_order_id, cycle_id, account_id, parent_id, kind,
                        symbol, side, qty, status, filled_qty, reason)
SELECT order_id, client_order_id, cycle_id, account_id, parent_id, kind, symbol, side, qty,
       CASE status WHEN 'cancelled' THEN 'canceled' ELSE status END, filled_qty, reason
FROM orders;

DROP TABLE orders;
ALTER TABLE orders_004 RENAME TO orders;

CREATE INDEX orders_staged ON orders (account_id) WHERE status = 'staged';
CREATE INDEX orders_working ON orders (account_id)
    WHERE status IN ('submitted', 'unknown', 'accepted', 'partially_filled', 'pending_cancel');
-- an execution names the venue's order id (paper orders have none: not in this index)
CREATE INDEX orders_venue ON orders (account_id, venue_order_id)
    WHERE venue_order_id IS NOT NULL;

ALTER TABLE fills ADD COLUMN recorded_at INTEGER;
ALTER TABLE fills ADD COLUMN fee_currency TEXT;
-- Where a live account's executions were last read (the venue's own cursor).
ALTER TABLE accounts ADD COLUMN venue_cursor TEXT;
