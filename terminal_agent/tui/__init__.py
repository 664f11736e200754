"""The store manager's console: a Textual app over the running agent's local API."""
