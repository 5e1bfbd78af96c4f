"""sipctl: command line client of sipd."""
