"""recommend layer."""
