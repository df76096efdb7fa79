"""The command line: thin modules that parse arguments, call the library and map errors to exit codes."""
