"""The pure stages: values in, values out. No database, no clock, no broker."""
