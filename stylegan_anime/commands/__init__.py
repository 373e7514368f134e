"""One module per CLI command: argument parsing only, the work is in the API."""
