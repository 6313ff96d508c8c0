"""meals of the DASHAT service."""
