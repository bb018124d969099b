"""
The subcommands of the C{socksgate} console command.
"""
