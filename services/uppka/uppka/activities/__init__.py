"""Activities of the uppka service."""
