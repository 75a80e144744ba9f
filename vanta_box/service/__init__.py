"""Where the pure stages meet I/O: one command, one cycle, one fee run."""
