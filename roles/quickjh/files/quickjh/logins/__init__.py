"""One module per quickjh_auth, chosen by name (as the spawners): pam, oidc, github, gitlab, ldap. Each has
configure(c, settings), which sets its authenticator class and what only that login kind needs."""
