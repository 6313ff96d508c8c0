"""people of the DASHAT service."""
