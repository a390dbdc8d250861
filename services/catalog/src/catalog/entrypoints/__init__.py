"""The catalog's HTTP API: thin routes over the service layer."""
