# JupyterHub configuration of quickjh: the same file in every image. It applies the deployment's settings (the
# role renders /etc/quickjh/settings.json from its variables) through quickjh.hubconfig, then loads a site's own
# lines from /etc/quickjh/jupyterhub_config.d/*.py in name order (the role writes quickjh_hub_extra_config there).
from quickjh import settings
from quickjh.hubconfig import configure

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)
configure(c, settings.load(), settings.state_dir())

for extra in settings.extra_config():
    load_subconfig(str(extra))  # noqa: F821  (provided by JupyterHub, as get_config)
