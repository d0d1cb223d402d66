# quickjh: the shared JupyterHub venv comes first on PATH in login shells (terminals, `bash -l`).
case ":$PATH:" in
  *:/opt/jupyterhub/bin:*) ;;
  *) PATH="/opt/jupyterhub/bin:$PATH" ;;
esac
export PATH
