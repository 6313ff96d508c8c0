"""The reporting service of Kencana."""
