"""Entry point `train`: see aelatent.jobs.train."""

from aelatent.jobs.train import cli

if __name__ == "__main__":
    cli()
