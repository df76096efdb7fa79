from cleanset.cli.app import main

main()
