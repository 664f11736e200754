"""`python -m terminal_agent`: the same as the `loyalty-agent` console script."""

from terminal_agent.cli import main

main()
