"""Validation of every file a user hands us (pydantic at the border, records inside)."""
