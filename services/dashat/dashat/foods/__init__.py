"""foods of the DASHAT service."""
