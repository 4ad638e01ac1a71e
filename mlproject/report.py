"""Entry point `report`: see aelatent.jobs.report."""

from aelatent.jobs.report import cli

if __name__ == "__main__":
    cli()
