"""Entry point `analyse`: see aelatent.jobs.analyse."""

from aelatent.jobs.analyse import cli

if __name__ == "__main__":
    cli()
