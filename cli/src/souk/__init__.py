"""Souk's command line: run, supervise and inspect the whole system on one machine."""
