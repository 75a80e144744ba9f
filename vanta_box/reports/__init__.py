"""Outputs: the JSON state files in memory/ and the HTML reports."""
