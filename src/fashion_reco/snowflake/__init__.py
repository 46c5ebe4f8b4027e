"""snowflake layer."""
