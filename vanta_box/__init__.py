"""vanta-box: a single-binary appliance that runs strategy vaults and mirrors them."""

__version__ = "0.1.0"
