-- 001_core: the journal and the projections of the core cycle.
--
-- Storage conventions, for this and every later migration:
--  * Money, prices, quantities, weights and factors are TEXT holding the canonical decimal
--    string of vanta_box/core/money.py fmt(): no exponent, no trailing zeros, "0" never
--    "-0". Decimal text is exact; it is compared and added only in Python, never with SQL
--    SUM()/ORDER BY (SQLite would go through binary floats).
--  * Moments in projection tables are INTEGER microseconds since the Unix epoch, UTC, so
--    they sort; journal rows keep the ISO-8601 text ("...Z") that was hashed.
--  * Every table is STRICT. Every value is bound from Python: no random(), no
--    datetime('now'), so a replay writes the same values.
--  * The journal is the truth. Every other table here is a projection of it and can be
--    rebuilt by `vanta replay`.

CREATE TABLE journal (
    seq       INTEGER PRIMARY KEY,      -- 1, 2, 3, ... without gaps
    ts        TEXT NOT NULL,            -- logical time of the event (the command's --at)
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,            -- canonical JSON (sorted keys, no floats)
    prev_hash TEXT NOT NULL,            -- hex SHA-256 of the previous row, 64 zeros for seq 1
    hash      TEXT NOT NULL             -- hex SHA-256(prev_hash bytes || canonical row bytes)
) STRICT;

CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN
    SELECT RAISE(ABORT, 'journal is append-only: UPDATE refused');
END;

CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN
    SELECT RAISE(ABORT, 'journal is append-only: DELETE refused');
END;

-- Rows are only ever added at the head, linked to it. This also stops INSERT OR REPLACE
-- from overwriting an old row (REPLACE does not fire DELETE triggers).
CREATE TRIGGER journal_append_at_head BEFORE INSERT ON journal
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM journal)
  OR NEW.prev_hash IS NOT coalesce(
        (SELECT hash FROM journal WHERE seq = NEW.seq - 1),
        '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN
    SELECT RAISE(ABORT, 'journal is append-only: rows are added at the head, chained');
END;

CREATE TABLE vaults (
    vault_id      TEXT PRIMARY KEY,
    config        TEXT NOT NULL,        -- canonical JSON of the validated definition
    status        TEXT NOT NULL CHECK (status IN ('active', 'halted')),
    imported_at   INTEGER NOT NULL,
    peak_nav      TEXT,                 -- highest cycle-start NAV so far
    last_nav      TEXT,                 -- NAV at the start of the last cycle
    last_cycle_at INTEGER
) STRICT;

CREATE TABLE instruments (
    symbol       TEXT PRIMARY KEY,
    asset_class  TEXT NOT NULL CHECK (asset_class IN ('equity', 'crypto')),
    lot_step     TEXT NOT NULL,
    min_notional TEXT NOT NULL
) STRICT;

CREATE TABLE prices (
    symbol TEXT NOT NULL REFERENCES instruments (symbol),
    ts     INTEGER NOT NULL,
    price  TEXT NOT NULL,
    PRIMARY KEY (symbol, ts)
) STRICT, WITHOUT ROWID;

-- One row per ingested signal file (vault, as_of); the scores as canonical JSON.
CREATE TABLE signal_sets (
    vault_id TEXT NOT NULL REFERENCES vaults (vault_id),
    as_of    INTEGER NOT NULL,
    scores   TEXT NOT NULL,
    digest   TEXT NOT NULL,             -- SHA-256 of the canonical scores
    PRIMARY KEY (vault_id, as_of)
) STRICT;

-- Overlays in force or not yet expired. Expired and cleared ones leave this table (and the
-- journal says when and why).
CREATE TABLE overlays (
    vault_id   TEXT NOT NULL REFERENCES vaults (vault_id),
    kind       TEXT NOT NULL CHECK (kind IN ('flip', 'boost', 'maintenance')),
    persona    TEXT NOT NULL,           -- '' unless kind = 'boost'
    factor     TEXT NOT NULL,           -- boost multiplier; '1' otherwise
    set_at     INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (vault_id, kind, persona)
) STRICT;

CREATE TABLE accounts (
    account_id      TEXT PRIMARY KEY,
    vault_id        TEXT NOT NULL REFERENCES vaults (vault_id),
    role            TEXT NOT NULL CHECK (role IN ('manager', 'follower')),
    mode            TEXT NOT NULL CHECK (mode IN ('master', 'proportional', 'capped', 'shadow')),
    broker_kind     TEXT NOT NULL CHECK (broker_kind IN ('paper', 'alpaca', 'ccxt')),
    broker_config   TEXT NOT NULL,      -- canonical JSON, secrets removed
    key_ref         TEXT,               -- keystore record name; never the secret
    key_fingerprint TEXT,               -- short SHA-256 prefix of the secrets
    persona_prefs   TEXT NOT NULL,      -- canonical JSON list
    mirroring       TEXT NOT NULL,      -- canonical JSON
    fee_agreement   TEXT,               -- canonical JSON, NULL for managers
    status          TEXT NOT NULL CHECK (status IN ('active', 'paused', 'removed')),
    onboarded_at    INTEGER NOT NULL,
    removed_at      INTEGER,
    starting_cash   TEXT NOT NULL,
    cash            TEXT NOT NULL,
    realized_pnl    TEXT NOT NULL,
    commissions     TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX accounts_one_manager ON accounts (vault_id) WHERE role = 'manager';
CREATE INDEX accounts_vault ON accounts (vault_id, account_id);

-- Open positions. Invariants: qty = sum of lot quantities; cost_basis = sum of
-- lot qty * unit cost (kept so unrealized PnL needs no lot scan); lots are FIFO-ordered.
CREATE TABLE positions (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    symbol     TEXT NOT NULL,
    qty        TEXT NOT NULL,
    cost_basis TEXT NOT NULL,
    lots       TEXT NOT NULL,           -- canonical JSON [[qty, unit_cost], ...], oldest first
    last_price TEXT NOT NULL,           -- last fill price: the mark when no price is known
    PRIMARY KEY (account_id, symbol)
) STRICT, WITHOUT ROWID;

CREATE TABLE cycles (
    cycle_id     TEXT PRIMARY KEY,
    vault_id     TEXT NOT NULL REFERENCES vaults (vault_id),
    at           INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('staged', 'done')),
    stage_only   INTEGER NOT NULL,
    vault_status TEXT NOT NULL,         -- active | halted | maintenance | no_signals
    nav          TEXT,
    peak_nav     TEXT,
    signal_as_of INTEGER,
    first_seq    INTEGER NOT NULL       -- journal seq where the cycle's decisions begin
) STRICT;

CREATE INDEX cycles_vault_at ON cycles (vault_id, at);

CREATE TABLE allocations (
    cycle_id    TEXT NOT NULL REFERENCES cycles (cycle_id),
    personas    TEXT NOT NULL,          -- canonical JSON list, sorted
    weights     TEXT NOT NULL,          -- canonical JSON {symbol: weight}
    cash_weight TEXT NOT NULL,
    PRIMARY KEY (cycle_id, personas)
) STRICT;

-- One b-tree per table on the hot path (hundreds of thousands of rows per cycle): orders
-- and fills are WITHOUT ROWID tables keyed for their queries. client_order_id is derived
-- from the order_id (cycle, account, symbol), so the primary key already makes it unique.
CREATE TABLE orders (
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
        CHECK (status IN ('staged', 'filled', 'rejected', 'cancelled', 'shadow')),
    filled_qty      TEXT NOT NULL,
    reason          TEXT
) STRICT, WITHOUT ROWID;

CREATE INDEX orders_staged ON orders (account_id) WHERE status = 'staged';

CREATE TABLE fills (
    account_id   TEXT NOT NULL REFERENCES accounts (account_id),
    at           INTEGER NOT NULL,
    fill_id      TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty          TEXT NOT NULL,
    price        TEXT NOT NULL,
    commission   TEXT NOT NULL,
    realized_pnl TEXT NOT NULL,
    seq          INTEGER NOT NULL,      -- journal row of the fill
    shadow       INTEGER NOT NULL,
    PRIMARY KEY (account_id, at, fill_id)
) STRICT, WITHOUT ROWID;
