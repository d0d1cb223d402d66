"""quickjh: the hub-side code of the quickjh role, installed into the hub image's venv.

Modules, each for one thing (the role copies this folder into the image; the controller's filter plugin imports
quickjh.rules from the role's files/ folder):

  rules        the rules of quickjh_users and quickjh_shared_folders (pure: controller and container)
  accounts     the container's accounts as /etc has them, and who may log in
  passwords    crypt(3) hashes, as PAM makes and checks them
  plan         what to change (no side effects) and the report line of what was changed
  apply        useradd, usermod, homes, shared folders
  ending       ending at once what a user runs, in each mode
  hubapi       the hub's REST API as the sync uses it
  persistence  accounts saved on the state volume and put back at start
  sync         one run of the users list, from check to save
  cli          quickjh-users (and quickjh-adduser's first step)
  backup       quickjh-backup: archives of homes, state and config
  nofollow     what root does in users' homes without following their links
  settings     the deployment's settings file, rendered by the role
  hubconfig    applying the settings to JupyterHub's config (jupyterhub_config.py calls it)
  auth         the authenticator: the container's Linux accounts
  spawners     one module per quickjh_spawner: local, docker
  launch       the per-user start (quickjh-launch), the same in every mode
"""
