# Jupyter server settings of the quickjh image, for every user's server: terminals open a bash login shell.
c = get_config()  # noqa: F821  (provided by Jupyter when it loads this file)
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}
