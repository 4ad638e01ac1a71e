"""Entry point `evaluate`: see aelatent.jobs.evaluate."""

from aelatent.jobs.evaluate import cli

if __name__ == "__main__":
    cli()
