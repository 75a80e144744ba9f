"""Values every layer shares: money, time, ids, errors. No I/O here."""
