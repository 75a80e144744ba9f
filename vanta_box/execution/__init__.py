"""Broker adapters behind one protocol. Vendor values become Decimal at this border."""
