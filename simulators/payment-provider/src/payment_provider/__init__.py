"""A payment provider simulator: the outside world that billing depends on."""
