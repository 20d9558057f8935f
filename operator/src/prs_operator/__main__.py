"""`python -m prs_operator`: run the operator with settings from the environment."""

from prs_operator import handlers
from prs_operator.settings import from_process_env

if __name__ == "__main__":
    handlers.run(from_process_env())
