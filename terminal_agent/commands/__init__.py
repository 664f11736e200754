"""Click command groups, one module per topic; each command is a few lines over a library call."""
