"""banks stage."""
