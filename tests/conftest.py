# eventlet must patch the standard library before anything else imports it
# (plain pytest hangs on nameko without it).
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet

eventlet.monkey_patch()

pytest_plugins = ["tests.fixtures"]
