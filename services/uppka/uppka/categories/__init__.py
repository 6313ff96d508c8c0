"""Member categories that follow age and the registry's facts: the daily sweep and re-evaluation on events."""
