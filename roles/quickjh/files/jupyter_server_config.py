# Jupyter server settings of the quickjh image, for every user's server: terminals open a bash login shell.
c = get_config()  # noqa: F821  (provided by Jupyter when it loads this file)
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}
# Kernels talk over Unix sockets in the user's private runtime dir (/run/user/UID, mode 700, JUPYTER_RUNTIME_DIR set
# by the hub) instead of TCP ports on 127.0.0.1 that every other user of the container could connect to.
c.KernelManager.transport = "ipc"
