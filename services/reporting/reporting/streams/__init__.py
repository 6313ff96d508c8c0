"""Curated per-consumer event streams and webhooks for other ministries (issue 15)."""
