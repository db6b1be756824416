"""The checks deploy/check_deploy.py runs, one module per concern (see that script)."""
