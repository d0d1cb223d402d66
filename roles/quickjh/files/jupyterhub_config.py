# JupyterHub configuration of quickjh: the same file in every image. It applies the deployment's settings (the
# role renders /etc/quickjh/settings.json from its variables) through quickjh.hubconfig, then a site's own lines:
# quickjh_hub_extra_config (in the settings), then any /etc/quickjh/jupyterhub_config.d/*.py, in name order.
from quickjh import settings
from quickjh.hubconfig import configure
from quickjh.hubdb import drop_shares

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)
deployment = settings.load()
configure(c, deployment, settings.state_dir())
if not deployment["collaboration"]:  # no share made while quickjh_collaboration was on outlives it
    drop_shares(settings.state_dir() / "jupyterhub.sqlite")

exec(compile(deployment.get("extra_config", ""), "quickjh_hub_extra_config", "exec"))  # noqa: S102 (the inventory's)
for extra in settings.extra_config():
    load_subconfig(str(extra))  # noqa: F821  (provided by JupyterHub, as get_config)
