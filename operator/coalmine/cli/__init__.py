"""The `coalmine` command-line tool."""
