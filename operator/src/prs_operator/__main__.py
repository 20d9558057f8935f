"""`python -m prs_operator`: run the operator with settings from the environment."""

import sys

from prs_operator import handlers
from prs_operator.progress_key_secret import KeySecretError
from prs_operator.settings import SettingsError, from_process_env

if __name__ == "__main__":
    try:
        handlers.run(from_process_env())
    except (SettingsError, KeySecretError) as error:
        sys.exit(f"prs-operator: {error}")
