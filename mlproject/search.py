"""Entry point `search`: see aelatent.jobs.search."""

from aelatent.jobs.search import cli

if __name__ == "__main__":
    cli()
