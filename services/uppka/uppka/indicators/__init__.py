"""Indicators of the uppka service."""
