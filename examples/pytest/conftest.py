pytest_plugins = ["hatchet_local.pytest_plugin"]
