"""`python -m lcfm_cli` (and `accelerate launch -m lcfm_cli ...`) runs the lcfm command."""

from lcfm_cli.main import main

main()
