"""kitchens of the DASHAT service."""
