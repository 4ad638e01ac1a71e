"""Entry point `main`: see aelatent.jobs.main."""

from aelatent.jobs.main import cli

if __name__ == "__main__":
    cli()
