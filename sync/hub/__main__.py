from sync.hub.cli import main

main()
