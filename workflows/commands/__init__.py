"""One module per `trainyard` subcommand; each exposes `add_parser(subparsers)`."""
