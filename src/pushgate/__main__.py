from pushgate.cli.main import main

main()
