"""The SVI-versus-NUTS benchmark suite: grid, runners, results tables and the command line."""
