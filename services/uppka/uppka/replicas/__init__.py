"""Replicas of the uppka service."""
