"""PyInstaller entry point for the `vanta` binary (see build/vanta.spec)."""

from vanta_box.cli import main

main()
